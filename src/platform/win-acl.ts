/**
 * Windows: who may write the managed config (issue 11, finding 13). POSIX modes say nothing
 * there, and Node has no API for a file's owner or DACL, so `icacls` (in every Windows since
 * Vista) is asked and its listing parsed. A managed file that a non-administrator may write,
 * or a folder in which one may create files, is refused like a group-writable file on Unix.
 *
 * The check costs a process start, so the first stage skips it: it serves a hit only under a
 * config that the second stage validated (the marker named after the layers' content), and a
 * planted or edited file changes that content, which sends the run to the second stage.
 */
import { seeDocs, unsafeError } from '../errors.js';

/** Principals that may hold write rights on the managed config and its folder. */
const TRUSTED = new Set([
  'nt authority\\system',
  'builtin\\administrators',
  'nt service\\trustedinstaller',
  'creator owner',
]);

/** Simple rights and specific rights that let a principal change or plant a file. */
const WRITE_RIGHTS = /^(F|M|W)$|^(WD|AD|WDAC|WO|GA|GW|DE|WEA|WA)$/;

export interface AclEntry {
  principal: string;
  rights: string[];
  inheritOnly: boolean;
}

/** Parses `icacls PATH` output: `PATH PRINCIPAL:(flags)(rights)` then one entry per line. */
export function parseIcacls(output: string, path: string): AclEntry[] {
  const entries: AclEntry[] = [];
  for (const raw of output.split(/\r?\n/)) {
    let line = raw;
    if (line.startsWith(path)) line = line.slice(path.length);
    line = line.trim();
    const m = /^(.+?):((?:\([^)]*\))+)$/.exec(line);
    if (!m?.[1] || !m[2]) continue;
    const groups = [...m[2].matchAll(/\(([^)]*)\)/g)].map((g) => g[1] ?? '');
    const rights: string[] = [];
    let inheritOnly = false;
    for (const g of groups) {
      for (const part of g.split(',')) {
        if (part === 'IO') inheritOnly = true;
        else if (!['OI', 'CI', 'NP', 'I'].includes(part)) rights.push(part);
      }
    }
    entries.push({ principal: m[1].trim(), rights, inheritOnly });
  }
  return entries;
}

/** The first principal outside SYSTEM/Administrators/TrustedInstaller that may write, if any. */
export function untrustedWriter(entries: AclEntry[], isFolder: boolean): string | undefined {
  for (const e of entries) {
    if (TRUSTED.has(e.principal.toLowerCase())) continue;
    if (e.rights.includes('DENY')) continue;
    // On a file, an inherit-only entry does not apply to the file itself; on a folder it
    // applies to what is created in it, which is what a planted file would be.
    if (e.inheritOnly && !isFolder) continue;
    if (e.rights.some((r) => WRITE_RIGHTS.test(r))) return e.principal;
  }
  return undefined;
}

let deferred = false;
/** The first stage defers the check to the second stage (see the top of this file). */
export function deferWindowsAclCheck(): void {
  deferred = true;
}

type Run = (file: string) => string;

function icacls(file: string): string {
  const cp = process.getBuiltinModule('node:child_process') as typeof import('node:child_process');
  // A fixed path, not a PATH lookup: a repository's settings env could put a fake icacls first.
  return cp.execFileSync('C:\\Windows\\System32\\icacls.exe', [file], {
    encoding: 'utf8',
    windowsHide: true,
    timeout: 5000,
  });
}

/** Refuses a managed config (or its folder) that someone other than an administrator may write. */
export function assertManagedAclSafe(file: string, folder: string, run: Run = icacls): void {
  if (deferred) return;
  for (const [target, isFolder] of [
    [folder, true],
    [file, false],
  ] as const) {
    let listing: string;
    try {
      listing = run(target);
    } catch {
      throw unsafeError(
        'ERR_UNSAFE_OWNER',
        `managed config ${target}: its permissions cannot be read (icacls failed)`,
        {
          hint: `check the file with icacls as an administrator; ${seeDocs('ERR_UNSAFE_OWNER')}`,
        },
      );
    }
    const who = untrustedWriter(parseIcacls(listing, target), isFolder);
    if (who) {
      throw unsafeError(
        'ERR_UNSAFE_PERMISSIONS',
        `managed config ${isFolder ? 'folder' : 'file'} ${target}: ${who} may write it`,
        {
          hint: `as an administrator run icacls "${target}" /inheritance:r /grant:r SYSTEM:F Administrators:F Users:RX, or reinstall with the MSI; ${seeDocs('ERR_UNSAFE_PERMISSIONS')}`,
        },
      );
    }
  }
}
