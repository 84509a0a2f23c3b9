/**
 * A local fake LLM gateway on 127.0.0.1, for running the real Claude Code CLI against, with
 * the three routes a gateway such as LiteLLM offers Claude Code:
 *
 * - the Anthropic Messages API: `POST /v1/messages` (base URL `url`);
 * - Bedrock pass-through (base URL `url/bedrock`): `POST /model/{id}/invoke` (one JSON
 *   message) and `/model/{id}/invoke-with-response-stream` (AWS event-stream binary framing,
 *   each frame's payload `{"bytes": base64(<Messages API stream event>)}`), and the
 *   unauthenticated `GET /inference-profiles` Claude Code sends first;
 * - Vertex pass-through (base URL `url/vertex_ai/v1`):
 *   `POST /projects/{p}/locations/{r}/publishers/anthropic/models/{id}:rawPredict` (JSON) and
 *   `:streamRawPredict` (Server-Sent Events, as the Messages API).
 *
 * It records every request (headers included) and answers with a short assistant message.
 * `rejectNext(n, status)` makes the next n model requests fail with 401 (or 403), as a
 * gateway does for a token it refuses.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';

export type GatewayMode = 'messages' | 'bedrock' | 'vertex';

export interface RecordedRequest {
  method: string;
  path: string;
  /** Which route family it came in by; undefined for other requests. */
  mode?: GatewayMode;
  /** True for a model request (Messages, invoke, rawPredict and their streaming forms). */
  model: boolean;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  /** The status the fake answered with. */
  status: number;
}

export interface FakeAnthropic {
  url: string;
  /** The base URL Claude Code is given for each mode. */
  baseUrl(mode: GatewayMode): string;
  requests: RecordedRequest[];
  /** Only the model requests (in every mode). */
  messageRequests(): RecordedRequest[];
  /** The next n model requests are answered 401 (authentication_error), or `status`. */
  rejectNext(n?: number, status?: 401 | 403): void;
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

/**
 * One AWS event-stream message (the framing of Bedrock's InvokeModelWithResponseStream):
 * total length, headers length, prelude CRC32, headers (name, type 7 = string, value),
 * payload, message CRC32, all big-endian.
 */
export function eventStreamFrame(headers: Record<string, string>, payload: Buffer): Buffer {
  const hs: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(value, 'utf8');
    const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length);
    h.writeUInt8(n.length, 0);
    n.copy(h, 1);
    h.writeUInt8(7, 1 + n.length);
    h.writeUInt16BE(v.length, 2 + n.length);
    v.copy(h, 4 + n.length);
    hs.push(h);
  }
  const headerBytes = Buffer.concat(hs);
  const total = 12 + headerBytes.length + payload.length + 4;
  const prelude = Buffer.alloc(12);
  prelude.writeUInt32BE(total, 0);
  prelude.writeUInt32BE(headerBytes.length, 4);
  prelude.writeUInt32BE(crc32(prelude.subarray(0, 8)), 8);
  const body = Buffer.concat([prelude, headerBytes, payload]);
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc32(body), 0);
  return Buffer.concat([body, tail]);
}

function bedrockChunk(event: unknown): Buffer {
  const payload = Buffer.from(
    JSON.stringify({ bytes: Buffer.from(JSON.stringify(event)).toString('base64') }),
  );
  return eventStreamFrame(
    { ':event-type': 'chunk', ':content-type': 'application/json', ':message-type': 'event' },
    payload,
  );
}

/** Which model route a request is, and the model id its path names (Bedrock, Vertex). */
function modelRoute(
  method: string,
  pathname: string,
): { mode: GatewayMode; stream?: boolean; model?: string } | undefined {
  if (method !== 'POST') return undefined;
  if (pathname === '/v1/messages') return { mode: 'messages' };
  const b = /^\/bedrock\/model\/([^/]+)\/(invoke|invoke-with-response-stream)$/.exec(pathname);
  if (b) return { mode: 'bedrock', stream: b[2] !== 'invoke', model: decodeURIComponent(b[1]!) };
  const v =
    /^\/vertex_ai\/v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/.exec(
      pathname,
    );
  if (v) return { mode: 'vertex', stream: v[2] === 'streamRawPredict', model: decodeURIComponent(v[1]!) };
  return undefined;
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
  let rejectStatus: 401 | 403 = 401;
  let authCheck: ((req: RecordedRequest) => boolean | Promise<boolean>) | undefined;
  let counter = 0;

  const fake: FakeAnthropic = {
    url: '',
    baseUrl: (mode) =>
      mode === 'bedrock' ? `${fake.url}/bedrock` : mode === 'vertex' ? `${fake.url}/vertex_ai/v1` : fake.url,
    requests,
    messageRequests: () => requests.filter((r) => r.model),
    rejectNext(n = 1, status = 401) {
      rejectCount += n;
      rejectStatus = status;
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
    const route = modelRoute(req.method ?? '', url.pathname);
    const rec: RecordedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      ...(route ? { mode: route.mode } : {}),
      model: route !== undefined,
      headers: req.headers,
      body,
      status: 0,
    };
    requests.push(rec);

    // Claude Code's Bedrock mode lists inference profiles first, with no credential at all.
    if (req.method === 'GET' && url.pathname === '/bedrock/inference-profiles') {
      rec.status = 200;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ inferenceProfileSummaries: [] }));
      return;
    }

    if (req.method === 'POST' && url.pathname === '/v1/messages/count_tokens') {
      rec.status = 200;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ input_tokens: 10 }));
      return;
    }
    if (!route) {
      rec.status = 404;
      sendError(res, 404, 'not_found_error', `no route ${req.method} ${url.pathname}`);
      return;
    }
    let refused: 401 | 403 | undefined;
    if (rejectCount > 0) {
      rejectCount--;
      refused = rejectStatus;
    } else if (authCheck && !(await authCheck(rec))) {
      refused = 401;
    }
    if (refused !== undefined) {
      rec.status = refused;
      if (refused === 403) sendError(res, 403, 'permission_error', 'not allowed for this model');
      else sendError(res, 401, 'authentication_error', 'invalid or expired token');
      return;
    }
    rec.status = 200;
    const b = (typeof body === 'object' && body !== null ? body : {}) as {
      model?: string;
      stream?: boolean;
      messages?: { role: string; content: unknown }[];
    };
    const model = route.model ?? b.model ?? MODEL_FALLBACK;
    const stream = route.mode === 'messages' ? Boolean(b.stream) : Boolean(route.stream);
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
    if (stream) {
      const emit =
        route.mode === 'bedrock'
          ? (_event: string, data: unknown) => res.write(bedrockChunk(data))
          : (event: string, data: unknown) => sse(res, event, data);
      res.writeHead(
        200,
        route.mode === 'bedrock'
          ? { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': `req_${id}` }
          : {
              'content-type': 'text/event-stream',
              'cache-control': 'no-cache',
              connection: 'keep-alive',
              'request-id': `req_${id}`,
            },
      );
      emit('message_start', {
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
        emit('content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'tool_use', id: `toolu_fake_${counter}`, name: 'Bash', input: {} },
        });
        emit('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'input_json_delta', partial_json: JSON.stringify(toolInput) },
        });
      } else {
        emit('content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'text', text: '' },
        });
        emit('ping', { type: 'ping' });
        emit('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text },
        });
      }
      emit('content_block_stop', { type: 'content_block_stop', index: 0 });
      emit('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: stopReason, stop_sequence: null },
        usage: { output_tokens: 6 },
      });
      emit('message_stop', { type: 'message_stop' });
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
