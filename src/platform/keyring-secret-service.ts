/**
 * Linux (and other freedesktop systems): the Secret Service API over the session bus, with
 * our own D-Bus client (keyring-dbus.ts). Nothing else: no kernel keyring, no file.
 *
 * Items are found by the attributes {service, account}, which is what keytar-based tools and
 * `secret-tool store service S account A` write; items written by keyring-rs /
 * @napi-rs/keyring carry {service, username} instead and are found by a second search. Items
 * we write carry all of service, account and username (plus keytar's xdg:schema), so every
 * one of those tools finds them. A search also matches items that carry more attributes (a mail
 * client's {service, account, server}): those are another application's, and keybroker never
 * reads, replaces or deletes them (isKeyringItemFor).
 *
 * Never prompts: a locked item or collection is an error (ERR_KEYCHAIN_LOCKED); we never
 * call Unlock or run a Prompt object. Every operation is bounded by `timeoutMs`; when it
 * passes, the connection is closed and the keyring must be opened again.
 */
import { seeDocs, unreachableError } from '../errors.js';
import { withDeadline } from './deadline.js';
import type { Keyring } from './keyring.js';
import { connectSessionBus, type DbusConnection, DbusError, type DbusVariant } from './keyring-dbus.js';

const BUS_NAME = 'org.freedesktop.secrets';
const SERVICE_PATH = '/org/freedesktop/secrets';
const SERVICE_IFACE = 'org.freedesktop.Secret.Service';
const ITEM_IFACE = 'org.freedesktop.Secret.Item';
const COLLECTION_IFACE = 'org.freedesktop.Secret.Collection';
const PROPS_IFACE = 'org.freedesktop.DBus.Properties';
const GENERIC_SCHEMA = 'org.freedesktop.Secret.Generic';

const UNAVAILABLE_HINT =
  'start a Secret Service in your session (gnome-keyring-daemon, KWallet or KeePassXC) and unlock it, ' +
  'or set cache.storage to "file" or "none"';
const LOCKED_HINT =
  'unlock it (log in to the desktop session, or unlock the login keyring in "Passwords and Keys"), or set cache.storage to "file" or "none"';

function keyringUnavailable(why: string, cause?: unknown) {
  return unreachableError('ERR_KEYCHAIN_UNAVAILABLE', `keychain (Secret Service): ${why}`, {
    hint: `${UNAVAILABLE_HINT}; ${seeDocs('ERR_KEYCHAIN_UNAVAILABLE')}`,
    cause,
  });
}

function keyringLocked(what: string, why = 'is locked') {
  return unreachableError('ERR_KEYCHAIN_LOCKED', `keychain (Secret Service): ${what} ${why}`, {
    hint: `${LOCKED_HINT}; ${seeDocs('ERR_KEYCHAIN_LOCKED')}`,
  });
}

/** Turns transport and D-Bus errors into ERR_KEYCHAIN_*; leaves our own errors alone. */
function classify(e: unknown): unknown {
  if (!(e instanceof DbusError)) return e;
  const n = e.dbusName;
  if (
    n === 'org.freedesktop.DBus.Error.ServiceUnknown' ||
    n === 'org.freedesktop.DBus.Error.NameHasNoOwner'
  ) {
    return keyringUnavailable(`no Secret Service on the session bus (${BUS_NAME} is not provided)`, e);
  }
  if (n.startsWith('org.freedesktop.DBus.Error.Spawn')) {
    return keyringUnavailable(`the Secret Service could not be started (${n})`, e);
  }
  if (n === 'org.freedesktop.Secret.Error.IsLocked') return keyringLocked('the keyring');
  if (n === 'org.freedesktop.DBus.Error.AccessDenied') {
    return keyringUnavailable('the Secret Service denied access (is this program allowed to use it?)', e);
  }
  if (n.startsWith('local.')) return keyringUnavailable(e.message, e);
  return keyringUnavailable(`the Secret Service answered ${n}`, e);
}

/**
 * Is an item with these attributes one that keybroker, keytar or keyring-rs writes for
 * (service, account)? keybroker: service, account, username, xdg:schema (Generic); keytar
 * (libsecret) and `secret-tool store service S account A`: service, account, xdg:schema;
 * keyring-rs / @napi-rs/keyring: service, username, xdg:schema, and in some versions
 * application "rust-keyring" and target "default". Any other attribute or value (a mail
 * client's `server`, another keyring-rs target) makes it someone else's item.
 */
export function isKeyringItemFor(
  attrs: Iterable<[string, string]>,
  service: string,
  account: string,
): boolean {
  const map = new Map(attrs);
  if (map.get('service') !== service || !(map.has('account') || map.has('username'))) return false;
  for (const [k, v] of map) {
    const known =
      k === 'service' ||
      ((k === 'account' || k === 'username') && v === account) ||
      (k === 'xdg:schema' && v === GENERIC_SCHEMA) ||
      (k === 'application' && v === 'rust-keyring') ||
      (k === 'target' && v === 'default');
    if (!known) return false;
  }
  return true;
}

interface Session {
  conn: DbusConnection;
  sessionPath: string;
}

async function openSession(
  env: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<Session> {
  const conn = await connectSessionBus(env, signal);
  try {
    const [, sessionPath] = await conn.call({
      destination: BUS_NAME,
      path: SERVICE_PATH,
      interface: SERVICE_IFACE,
      member: 'OpenSession',
      signature: 'sv',
      // "plain": the secret travels unencrypted over the private unix socket, as with libsecret's
      // default for local buses; nothing else can read that socket.
      body: ['plain', ['s', '']],
    });
    return { conn, sessionPath: sessionPath as string };
  } catch (e) {
    conn.close();
    throw e;
  }
}

export async function openSecretServiceKeyring(opts: {
  env: Readonly<Record<string, string | undefined>>;
  timeoutMs: number;
}): Promise<Keyring> {
  const { env, timeoutMs } = opts;
  let session: Promise<Session> | undefined;
  let opening: AbortController | undefined;
  const drop = () => {
    const s = session;
    session = undefined;
    opening?.abort();
    s?.then(
      (x) => x.conn.close(),
      () => {},
    );
  };
  const getSession = () => {
    if (!session) {
      opening = new AbortController();
      session = openSession(env, opening.signal);
    }
    return session;
  };
  /** One bounded operation; a timeout or transport failure drops the connection. */
  const op = <T>(work: (s: Session) => Promise<T>): Promise<T> =>
    withDeadline(
      timeoutMs,
      async () => {
        try {
          return await work(await getSession());
        } catch (e) {
          if (e instanceof DbusError && e.dbusName.startsWith('local.')) drop();
          throw classify(e);
        }
      },
      () => {
        drop();
        return keyringUnavailable(`no answer within ${timeoutMs} ms`);
      },
      // The D-Bus socket never keeps the process alive by itself: this wait does.
      { keepAlive: true },
    );

  const call = (
    s: Session,
    path: string,
    iface: string,
    member: string,
    signature?: string,
    body?: unknown[],
  ) =>
    s.conn.call({
      destination: BUS_NAME,
      path,
      interface: iface,
      member,
      ...(signature ? { signature, body: body ?? [] } : {}),
    });

  const search = async (s: Session, attrs: Record<string, string>) => {
    const [unlocked, locked] = await call(s, SERVICE_PATH, SERVICE_IFACE, 'SearchItems', 'a{ss}', [
      Object.entries(attrs),
    ]);
    return { unlocked: unlocked as string[], locked: locked as string[] };
  };

  const property = async (s: Session, path: string, iface: string, name: string) => {
    const [variant] = await call(s, path, PROPS_IFACE, 'Get', 'ss', [iface, name]);
    return (variant as DbusVariant)[1];
  };

  /**
   * Unlocked items of the shapes keybroker, keytar and keyring-rs write for (service,
   * account): a search matches any item that merely includes those attributes, such as a mail
   * client's {service, account, server}, which is not ours to read, replace or delete.
   */
  const ours = async (s: Session, paths: string[], service: string, account: string) => {
    const out: string[] = [];
    for (const p of paths) {
      const attrs = (await property(s, p, ITEM_IFACE, 'Attributes')) as [string, string][];
      if (isKeyringItemFor(attrs, service, account)) out.push(p);
    }
    return out;
  };

  /** Items for (service, account): by `account` first, else by `username` (keyring-rs). */
  const find = async (s: Session, service: string, account: string) => {
    const byAccount = await search(s, { service, account });
    const mine = { unlocked: await ours(s, byAccount.unlocked, service, account), locked: byAccount.locked };
    if (mine.unlocked.length > 0 || mine.locked.length > 0) return mine;
    const byUsername = await search(s, { service, username: account });
    return { unlocked: await ours(s, byUsername.unlocked, service, account), locked: byUsername.locked };
  };

  const newest = async (s: Session, paths: string[]) => {
    if (paths.length === 1) return paths[0]!;
    let best = paths[0]!;
    let bestModified = -1n;
    for (const p of paths) {
      const modified = BigInt((await property(s, p, ITEM_IFACE, 'Modified')) as bigint);
      if (modified > bestModified) {
        best = p;
        bestModified = modified;
      }
    }
    return best;
  };

  const itemLabel = (service: string, account: string) => `${service}/${account}`;

  // Open now, so that an absent Secret Service is reported by openKeyring itself.
  await op(async () => undefined);

  return {
    backend: 'secret-service',

    get(service, account) {
      return op(async (s) => {
        const found = await find(s, service, account);
        if (found.unlocked.length === 0) {
          if (found.locked.length > 0) throw keyringLocked(`the item service=${service} account=${account}`);
          return undefined;
        }
        const item = await newest(s, found.unlocked);
        const [secret] = await call(s, item, ITEM_IFACE, 'GetSecret', 'o', [s.sessionPath]);
        const [, , value] = secret as [string, Buffer, Buffer, string];
        return value.toString('utf8');
      });
    },

    set(service, account, value, label) {
      return op(async (s) => {
        const [collection] = (await call(s, SERVICE_PATH, SERVICE_IFACE, 'ReadAlias', 's', ['default'])) as [
          string,
        ];
        if (collection === '/') {
          throw keyringUnavailable(
            'there is no default keyring to store items in (creating one needs a prompt)',
          );
        }
        if ((await property(s, collection, COLLECTION_IFACE, 'Locked')) === true) {
          throw keyringLocked('the default keyring');
        }
        const attributes: [string, string][] = [
          ['service', service],
          ['account', account],
          ['username', account],
          ['xdg:schema', GENERIC_SCHEMA],
        ];
        const properties: [string, DbusVariant][] = [
          ['org.freedesktop.Secret.Item.Label', ['s', label ?? itemLabel(service, account)]],
          ['org.freedesktop.Secret.Item.Attributes', ['a{ss}', attributes]],
        ];
        const secret = [s.sessionPath, Buffer.alloc(0), Buffer.from(value, 'utf8'), 'text/plain'];
        const [item, prompt] = (await call(s, collection, COLLECTION_IFACE, 'CreateItem', 'a{sv}(oayays)b', [
          properties,
          secret,
          // No replace: gnome-keyring would replace any item whose attributes include ours (a
          // mail client's with one more). The items that are ours go below, one by one.
          false,
        ])) as [string, string];
        // A prompt means the store wants someone to unlock or confirm; keybroker never shows one.
        if (item === '/' || prompt !== '/')
          throw keyringLocked('the default keyring', 'asks for a prompt to store an item');
        // Leave exactly one item for (service, account): remove the ones keytar or keyring-rs
        // wrote for it, never an item of another shape that shares these attributes.
        const found = new Set([
          ...(await search(s, { service, account })).unlocked,
          ...(await search(s, { service, username: account })).unlocked,
        ]);
        const others = new Set(await ours(s, [...found], service, account));
        others.delete(item);
        for (const p of others) await call(s, p, ITEM_IFACE, 'Delete');
      });
    },

    delete(service, account) {
      return op(async (s) => {
        const byAccount = await search(s, { service, account });
        const byUsername = await search(s, { service, username: account });
        const found = [...new Set([...byAccount.unlocked, ...byUsername.unlocked])];
        const unlocked = new Set(await ours(s, found, service, account));
        if (unlocked.size === 0 && byAccount.locked.length + byUsername.locked.length > 0) {
          throw keyringLocked(`the item service=${service} account=${account}`);
        }
        for (const p of unlocked) {
          const [prompt] = (await call(s, p, ITEM_IFACE, 'Delete')) as [string];
          if (prompt !== '/') {
            throw keyringLocked(
              `the item service=${service} account=${account}`,
              'asks for a prompt to delete it',
            );
          }
        }
        return unlocked.size > 0;
      });
    },

    list(service) {
      return op(async (s) => {
        const { unlocked } = await search(s, { service });
        const accounts = new Set<string>();
        for (const p of unlocked) {
          const attrs = (await property(s, p, ITEM_IFACE, 'Attributes')) as [string, string][];
          const map = new Map(attrs);
          const account = map.get('account') ?? map.get('username');
          if (account !== undefined && isKeyringItemFor(attrs, service, account)) accounts.add(account);
        }
        return [...accounts].sort();
      });
    },
  };
}
