/**
 * A local fake of the Anthropic Messages API on 127.0.0.1, for running the real Claude Code
 * CLI against. It records every request (headers included) and answers `POST /v1/messages`
 * with a short assistant message: as Server-Sent Events when the body asks for
 * `stream: true`, else as one JSON message. `rejectNext(n)` makes the next n message
 * requests fail with 401, as a gateway does for a token it refuses.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  /** The status the fake answered with. */
  status: number;
}

export interface FakeAnthropic {
  url: string;
  requests: RecordedRequest[];
  /** Only the POST /v1/messages requests. */
  messageRequests(): RecordedRequest[];
  /** The next n message requests are answered 401 (authentication_error). */
  rejectNext(n?: number): void;
  /** Called with each message request's credentials; return false to answer 401. */
  setAuthCheck(check: ((req: RecordedRequest) => boolean | Promise<boolean>) | undefined): void;
  reply: string;
  /**
   * When set, the fake answers with a tool call (this shell command, through Claude Code's
   * Bash tool) until the conversation holds `toolRounds` tool results, then with `reply`.
   * Makes one `claude -p` run send several requests over time.
   */
  tool: { command: string; rounds: number } | undefined;
  close(): Promise<void>;
}

const MODEL_FALLBACK = 'claude-sonnet-4-5';

function sse(res: http.ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function sendError(res: http.ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_fake_${status}` });
  res.end(JSON.stringify({ type: 'error', error: { type, message } }));
}

function countToolResults(messages: { role: string; content: unknown }[] | undefined): number {
  let n = 0;
  for (const m of messages ?? []) {
    if (m.role !== 'user' || !Array.isArray(m.content)) continue;
    for (const c of m.content) if ((c as { type?: string }).type === 'tool_result') n++;
  }
  return n;
}

export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const requests: RecordedRequest[] = [];
  let rejectCount = 0;
  let authCheck: ((req: RecordedRequest) => boolean | Promise<boolean>) | undefined;
  let counter = 0;

  const fake: FakeAnthropic = {
    url: '',
    requests,
    messageRequests: () => requests.filter((r) => r.method === 'POST' && r.path === '/v1/messages'),
    rejectNext(n = 1) {
      rejectCount += n;
    },
    setAuthCheck(check) {
      authCheck = check;
    },
    reply: 'Hello from the fake API.',
    tool: undefined,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let body: unknown = raw;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      // keep the raw text
    }
    const rec: RecordedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      headers: req.headers,
      body,
      status: 0,
    };
    requests.push(rec);

    if (req.method === 'POST' && url.pathname === '/v1/messages/count_tokens') {
      rec.status = 200;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ input_tokens: 10 }));
      return;
    }
    if (req.method !== 'POST' || url.pathname !== '/v1/messages') {
      rec.status = 404;
      sendError(res, 404, 'not_found_error', `no route ${req.method} ${url.pathname}`);
      return;
    }
    let ok = true;
    if (rejectCount > 0) {
      rejectCount--;
      ok = false;
    } else if (authCheck) {
      ok = await authCheck(rec);
    }
    if (!ok) {
      rec.status = 401;
      sendError(res, 401, 'authentication_error', 'invalid x-api-key');
      return;
    }
    rec.status = 200;
    const b = (typeof body === 'object' && body !== null ? body : {}) as {
      model?: string;
      stream?: boolean;
      messages?: { role: string; content: unknown }[];
    };
    const model = b.model ?? MODEL_FALLBACK;
    const id = `msg_fake_${++counter}`;
    const text = fake.reply;
    const toolCall = fake.tool && countToolResults(b.messages) < fake.tool.rounds ? fake.tool : undefined;
    const toolInput = toolCall ? { command: toolCall.command, description: 'wait a moment' } : undefined;
    const content = toolInput
      ? [{ type: 'tool_use', id: `toolu_fake_${counter}`, name: 'Bash', input: toolInput }]
      : [{ type: 'text', text }];
    const stopReason = toolInput ? 'tool_use' : 'end_turn';
    const usage = {
      input_tokens: 10,
      output_tokens: 6,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    };
    if (b.stream) {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'request-id': `req_${id}`,
      });
      sse(res, 'message_start', {
        type: 'message_start',
        message: {
          id,
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { ...usage, output_tokens: 1 },
        },
      });
      if (toolInput) {
        sse(res, 'content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'tool_use', id: `toolu_fake_${counter}`, name: 'Bash', input: {} },
        });
        sse(res, 'content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'input_json_delta', partial_json: JSON.stringify(toolInput) },
        });
      } else {
        sse(res, 'content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'text', text: '' },
        });
        sse(res, 'ping', { type: 'ping' });
        sse(res, 'content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text },
        });
      }
      sse(res, 'content_block_stop', { type: 'content_block_stop', index: 0 });
      sse(res, 'message_delta', {
        type: 'message_delta',
        delta: { stop_reason: stopReason, stop_sequence: null },
        usage: { output_tokens: 6 },
      });
      sse(res, 'message_stop', { type: 'message_stop' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'request-id': `req_${id}` });
    res.end(
      JSON.stringify({
        id,
        type: 'message',
        role: 'assistant',
        model,
        content,
        stop_reason: stopReason,
        stop_sequence: null,
        usage,
      }),
    );
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
