/**
 * A minimal D-Bus client: the session bus over its unix socket, SASL EXTERNAL, and method
 * calls with the wire marshalling of the D-Bus specification. Just enough for the Secret
 * Service (keyring-secret-service.ts), in plain TypeScript so that it works inside a single
 * executable with no native addon, and so that every call is bounded by our own deadline.
 *
 * Values: y/n/q/i/u/h → number, x/t → bigint, d → number, b → boolean, s/o/g → string,
 * ay → Buffer, a{kv} → [k, v][], other arrays → unknown[], structs → unknown[],
 * v → [signature, value].
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export type DbusVariant = [signature: string, value: unknown];

export class DbusError extends Error {
  /** The D-Bus error name (e.g. org.freedesktop.DBus.Error.ServiceUnknown) or a transport code. */
  readonly dbusName: string;
  constructor(dbusName: string, message: string) {
    super(message);
    this.name = 'DbusError';
    this.dbusName = dbusName;
  }
}

// ---------------------------------------------------------------- signatures

interface TypeNode {
  code: string;
  child?: TypeNode;
  fields?: TypeNode[];
}

function parseOne(sig: string, at: { i: number }): TypeNode {
  const c = sig[at.i++];
  if (c === undefined) throw new DbusError('local.BadSignature', `bad signature "${sig}"`);
  if (c === 'a') return { code: 'a', child: parseOne(sig, at) };
  if (c === '(' || c === '{') {
    const close = c === '(' ? ')' : '}';
    const fields: TypeNode[] = [];
    while (sig[at.i] !== close) {
      if (at.i >= sig.length) throw new DbusError('local.BadSignature', `bad signature "${sig}"`);
      fields.push(parseOne(sig, at));
    }
    at.i++;
    return { code: c, fields };
  }
  if ('ybnqiuxtdsogvh'.includes(c)) return { code: c };
  throw new DbusError('local.BadSignature', `bad signature "${sig}"`);
}

const sigCache = new Map<string, TypeNode[]>();
function parseSignature(sig: string): TypeNode[] {
  let types = sigCache.get(sig);
  if (!types) {
    types = [];
    const at = { i: 0 };
    while (at.i < sig.length) types.push(parseOne(sig, at));
    sigCache.set(sig, types);
  }
  return types;
}

function alignOf(code: string): number {
  switch (code) {
    case 'y':
    case 'g':
    case 'v':
      return 1;
    case 'n':
    case 'q':
      return 2;
    case 'x':
    case 't':
    case 'd':
    case '(':
    case '{':
      return 8;
    default:
      return 4;
  }
}

/**
 * The fixed-size numbers other than u32 (which has its own reader and writer): their size, which
 * is also their alignment, and the Buffer method family that reads and writes them.
 */
const NUMBERS = {
  n: [2, 'Int16'],
  q: [2, 'UInt16'],
  i: [4, 'Int32'],
  x: [8, 'BigInt64'],
  t: [8, 'BigUInt64'],
  d: [8, 'Double'],
} as const;

function isNumber(code: string): code is keyof typeof NUMBERS {
  return Object.hasOwn(NUMBERS, code);
}

// ---------------------------------------------------------------- writing (little-endian)

class Writer {
  buf = Buffer.alloc(256);
  pos = 0;
  /** Offset of this writer's position 0 within the message, for alignment. */
  constructor(private readonly base = 0) {}

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  align(n: number): void {
    const pad = (n - ((this.base + this.pos) % n)) % n;
    this.room(pad);
    this.buf.fill(0, this.pos, this.pos + pad);
    this.pos += pad;
  }
  u8(v: number): void {
    this.room(1);
    this.buf.writeUInt8(v, this.pos);
    this.pos += 1;
  }
  u32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  bytes(b: Buffer): void {
    this.room(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }
  result(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  write(t: TypeNode, v: unknown): void {
    if (isNumber(t.code)) {
      const [size, name] = NUMBERS[t.code];
      this.align(size);
      this.room(size);
      const write = this.buf[`write${name}LE`] as (value: number | bigint, at: number) => number;
      write.call(this.buf, name.startsWith('Big') ? BigInt(v as bigint) : Number(v), this.pos);
      this.pos += size;
      return;
    }
    switch (t.code) {
      case 'y':
        this.u8(Number(v));
        return;
      case 'b':
        this.u32(v ? 1 : 0);
        return;
      case 'u':
      case 'h':
        this.u32(Number(v));
        return;
      case 's':
      case 'o':
      case 'g': {
        // A string's length is a u32, a signature's a byte; both end in a NUL.
        const b = Buffer.from(String(v), 'utf8');
        if (t.code === 'g') this.u8(b.length);
        else this.u32(b.length);
        this.bytes(b);
        this.u8(0);
        return;
      }
      case 'v': {
        const [sig, value] = v as DbusVariant;
        const types = parseSignature(sig);
        if (types.length !== 1)
          throw new DbusError('local.BadSignature', `variant needs one type, got "${sig}"`);
        this.write({ code: 'g' }, sig);
        this.write(types[0]!, value);
        return;
      }
      case '(':
      case '{': {
        this.align(8);
        const values = v as unknown[];
        for (const [i, f] of t.fields!.entries()) this.write(f, values[i]);
        return;
      }
      case 'a': {
        const child = t.child!;
        this.u32(0);
        const lenAt = this.pos - 4;
        this.align(alignOf(child.code));
        const start = this.pos;
        if (child.code === 'y') this.bytes(Buffer.isBuffer(v) ? v : Buffer.from(v as number[]));
        else for (const item of v as unknown[]) this.write(child, item);
        this.buf.writeUInt32LE(this.pos - start, lenAt);
        return;
      }
      default:
        throw new DbusError('local.BadSignature', `cannot write type ${t.code}`);
    }
  }
}

// ---------------------------------------------------------------- reading

class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly le: boolean,
    private readonly base = 0,
  ) {}

  align(n: number): void {
    this.pos += (n - ((this.base + this.pos) % n)) % n;
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DbusError('local.BadMessage', 'truncated D-Bus message');
  }
  u32(): number {
    this.align(4);
    this.need(4);
    const v = this.le ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  read(t: TypeNode): unknown {
    const b = this.buf;
    if (isNumber(t.code)) {
      const [size, name] = NUMBERS[t.code];
      this.align(size);
      this.need(size);
      const read = b[`read${name}${this.le ? 'LE' : 'BE'}`] as (at: number) => number | bigint;
      const v = read.call(b, this.pos);
      this.pos += size;
      return v;
    }
    switch (t.code) {
      case 'y':
        this.need(1);
        return b.readUInt8(this.pos++);
      case 'b':
        return this.u32() !== 0;
      case 'u':
      case 'h':
        return this.u32();
      case 's':
      case 'o': {
        const len = this.u32();
        this.need(len + 1);
        const s = b.toString('utf8', this.pos, this.pos + len);
        this.pos += len + 1;
        return s;
      }
      case 'g': {
        this.need(1);
        const len = b.readUInt8(this.pos++);
        this.need(len + 1);
        const s = b.toString('utf8', this.pos, this.pos + len);
        this.pos += len + 1;
        return s;
      }
      case 'v': {
        const sig = this.read({ code: 'g' }) as string;
        const types = parseSignature(sig);
        if (types.length !== 1) throw new DbusError('local.BadMessage', `variant with signature "${sig}"`);
        return [sig, this.read(types[0]!)] satisfies DbusVariant;
      }
      case '(':
      case '{':
        this.align(8);
        return t.fields!.map((f) => this.read(f));
      case 'a': {
        const len = this.u32();
        const child = t.child!;
        this.align(alignOf(child.code));
        this.need(len);
        const end = this.pos + len;
        if (child.code === 'y') {
          const out = Buffer.from(b.subarray(this.pos, end));
          this.pos = end;
          return out;
        }
        const out: unknown[] = [];
        while (this.pos < end) out.push(this.read(child));
        return out;
      }
      default:
        throw new DbusError('local.BadMessage', `cannot read type ${t.code}`);
    }
  }
}

// ---------------------------------------------------------------- messages

const MSG_METHOD_CALL = 1;
const MSG_METHOD_RETURN = 2;
const MSG_ERROR = 3;
/** Header flag: never let the bus or the callee start an interactive authorization (a prompt). */
const FLAG_NONE = 0;

const FIELD = {
  path: 1,
  interface: 2,
  member: 3,
  errorName: 4,
  replySerial: 5,
  destination: 6,
  signature: 8,
};

export interface MethodCall {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

interface Incoming {
  type: number;
  serial: number;
  replySerial?: number;
  errorName?: string;
  body: unknown[];
}

function encodeCall(serial: number, call: MethodCall): Buffer {
  const fields: [number, DbusVariant][] = [
    [FIELD.path, ['o', call.path]],
    [FIELD.interface, ['s', call.interface]],
    [FIELD.member, ['s', call.member]],
    [FIELD.destination, ['s', call.destination]],
  ];
  const sig = call.signature ?? '';
  let body: Buffer = Buffer.alloc(0);
  if (sig) {
    fields.push([FIELD.signature, ['g', sig]]);
    const w = new Writer(0);
    const types = parseSignature(sig);
    for (const [i, t] of types.entries()) w.write(t, call.body?.[i]);
    body = w.result();
  }
  const h = new Writer(0);
  h.u8('l'.charCodeAt(0));
  h.u8(MSG_METHOD_CALL);
  h.u8(FLAG_NONE);
  h.u8(1);
  h.u32(body.length);
  h.u32(serial);
  h.write(parseSignature('a(yv)')[0]!, fields);
  h.align(8);
  return Buffer.concat([h.result(), body]);
}

/** Length of the first complete message in buf, or 0 when more bytes are needed. */
function messageLength(buf: Buffer): number {
  if (buf.length < 16) return 0;
  const le = buf[0] === 0x6c;
  const bodyLen = le ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
  const fieldsLen = le ? buf.readUInt32LE(12) : buf.readUInt32BE(12);
  const headerLen = 16 + fieldsLen + ((8 - ((16 + fieldsLen) % 8)) % 8);
  const total = headerLen + bodyLen;
  return buf.length >= total ? total : 0;
}

function decodeMessage(buf: Buffer): Incoming {
  const le = buf[0] === 0x6c;
  if (!le && buf[0] !== 0x42) throw new DbusError('local.BadMessage', 'bad D-Bus endianness marker');
  const r = new Reader(buf, le);
  r.pos = 1;
  const type = r.read({ code: 'y' }) as number;
  r.pos = 8;
  const serial = r.u32();
  const fields = r.read(parseSignature('a(yv)')[0]!) as [number, DbusVariant][];
  r.align(8);
  const msg: Incoming = { type, serial, body: [] };
  let sig = '';
  for (const [code, [, value]] of fields) {
    if (code === FIELD.replySerial) msg.replySerial = value as number;
    else if (code === FIELD.errorName) msg.errorName = value as string;
    else if (code === FIELD.signature) sig = value as string;
  }
  if (sig) {
    const body = new Reader(buf.subarray(r.pos), le, 0);
    msg.body = parseSignature(sig).map((t) => body.read(t));
  }
  return msg;
}

// ---------------------------------------------------------------- addresses

/**
 * Unix socket paths to try for the session bus: DBUS_SESSION_BUS_ADDRESS (unix:path= or
 * unix:abstract=, `;`-separated alternatives), else $XDG_RUNTIME_DIR/bus as libdbus and
 * sd-bus do. Throws when there is none.
 */
export function sessionBusPaths(env: Readonly<Record<string, string | undefined>>): string[] {
  const address = env.DBUS_SESSION_BUS_ADDRESS;
  if (address) {
    const out: string[] = [];
    for (const alt of address.split(';')) {
      const colon = alt.indexOf(':');
      if (colon < 0 || alt.slice(0, colon) !== 'unix') continue;
      const params = new Map<string, string>();
      for (const kv of alt.slice(colon + 1).split(',')) {
        const eq = kv.indexOf('=');
        if (eq > 0) params.set(kv.slice(0, eq), decodeURIComponent(kv.slice(eq + 1)));
      }
      const p = params.get('path');
      const abstract = params.get('abstract');
      if (p) out.push(p);
      else if (abstract) out.push(`\0${abstract}`);
    }
    if (out.length === 0) {
      throw new DbusError(
        'local.NoBus',
        'DBUS_SESSION_BUS_ADDRESS names no unix socket (only unix:path= and unix:abstract= are supported)',
      );
    }
    return out;
  }
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) {
    const p = path.join(runtime, 'bus');
    if (fs.existsSync(p)) return [p];
  }
  throw new DbusError('local.NoBus', 'no session bus (DBUS_SESSION_BUS_ADDRESS is unset)');
}

// ---------------------------------------------------------------- connection

export interface DbusConnection {
  call(call: MethodCall): Promise<unknown[]>;
  close(): void;
}

/**
 * Connects and authenticates to the session bus, then says Hello. The socket is unref'd
 * while no call is pending, so an idle connection never keeps the process alive. Callers
 * bound the time (keyring-secret-service.ts closes the connection when its deadline passes).
 */
export async function connectSessionBus(
  env: Readonly<Record<string, string | undefined>>,
  signal?: AbortSignal,
): Promise<DbusConnection> {
  const paths = sessionBusPaths(env);
  let lastError: unknown;
  for (const p of paths) {
    try {
      return await connectPath(p, signal);
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

function connectPath(socketPath: string, signal?: AbortSignal): Promise<DbusConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath });
    // Never keeps the process alive by itself: callers hold a deadline timer while they wait.
    socket.unref();
    let buffered: Buffer = Buffer.alloc(0);
    let authenticated = false;
    let closed = false;
    let serial = 0;
    let failure: DbusError | undefined;
    const pending = new Map<number, { resolve: (b: unknown[]) => void; reject: (e: unknown) => void }>();

    const shown = socketPath.startsWith('\0') ? `@${socketPath.slice(1)}` : socketPath;
    const fail = (e: DbusError) => {
      if (closed) return;
      closed = true;
      failure = e;
      socket.destroy();
      for (const p of pending.values()) p.reject(e);
      pending.clear();
      reject(e);
    };
    const updateRef = () => {
      if (pending.size > 0) socket.ref();
      else socket.unref();
    };

    const conn: DbusConnection = {
      call(call) {
        if (closed)
          return Promise.reject(failure ?? new DbusError('local.Closed', 'D-Bus connection closed'));
        const s = ++serial;
        const p = new Promise<unknown[]>((res, rej) => pending.set(s, { resolve: res, reject: rej }));
        updateRef();
        socket.write(encodeCall(s, call));
        return p.finally(updateRef);
      },
      close() {
        fail(new DbusError('local.Closed', 'D-Bus connection closed'));
      },
    };

    if (signal) {
      const onAbort = () => fail(new DbusError('local.Aborted', `session bus at ${shown}: gave up waiting`));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    socket.on('error', (e: NodeJS.ErrnoException) => {
      fail(
        new DbusError(`local.${e.code ?? 'SocketError'}`, `session bus at ${shown}: ${e.code ?? e.message}`),
      );
    });
    socket.on('close', () =>
      fail(new DbusError('local.Closed', `session bus at ${shown}: connection closed`)),
    );
    socket.on('connect', () => {
      const uid = typeof process.getuid === 'function' ? String(process.getuid()) : '';
      socket.write(
        Buffer.concat([
          Buffer.from([0]),
          Buffer.from(`AUTH EXTERNAL ${Buffer.from(uid).toString('hex')}\r\n`),
        ]),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      if (!authenticated) {
        const eol = buffered.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffered.toString('latin1', 0, eol);
        buffered = buffered.subarray(eol + 2);
        if (!line.startsWith('OK ')) {
          fail(new DbusError('local.AuthFailed', `session bus at ${shown}: authentication refused`));
          return;
        }
        authenticated = true;
        socket.write('BEGIN\r\n');
        conn
          .call({
            destination: 'org.freedesktop.DBus',
            path: '/org/freedesktop/DBus',
            interface: 'org.freedesktop.DBus',
            member: 'Hello',
          })
          .then(() => resolve(conn), reject);
      }
      for (;;) {
        const len = messageLength(buffered);
        if (len === 0) break;
        let msg: Incoming;
        try {
          msg = decodeMessage(buffered.subarray(0, len));
        } catch (e) {
          fail(e instanceof DbusError ? e : new DbusError('local.BadMessage', 'undecodable D-Bus message'));
          return;
        }
        buffered = buffered.subarray(len);
        if ((msg.type === MSG_METHOD_RETURN || msg.type === MSG_ERROR) && msg.replySerial !== undefined) {
          const waiter = pending.get(msg.replySerial);
          if (!waiter) continue;
          pending.delete(msg.replySerial);
          if (msg.type === MSG_METHOD_RETURN) waiter.resolve(msg.body);
          else {
            const name = msg.errorName ?? 'org.freedesktop.DBus.Error.Failed';
            waiter.reject(new DbusError(name, name));
          }
        }
        // Signals and calls addressed to us are ignored.
      }
    });
  });
}

/** Exposed for unit tests of the wire format. */
export const wire = {
  encodeCall,
  decodeMessage,
  messageLength,
  marshal(sig: string, values: unknown[]): Buffer {
    const w = new Writer(0);
    for (const [i, t] of parseSignature(sig).entries()) w.write(t, values[i]);
    return w.result();
  },
  unmarshal(sig: string, buf: Buffer): unknown[] {
    const r = new Reader(buf, true, 0);
    return parseSignature(sig).map((t) => r.read(t));
  },
};
