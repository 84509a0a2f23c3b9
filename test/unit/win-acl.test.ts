/** Windows managed-config ACLs (issue 11, finding 13), parsed from real icacls listings. */
import { describe, expect, it } from 'vitest';
import { assertManagedAclSafe, parseIcacls, untrustedWriter } from '../../src/platform/win-acl.js';

const DIR = 'C:\\ProgramData\\keybroker';
const FILE = `${DIR}\\config.json`;

// What ProgramData's default ACL gives a new folder: Users may create files (WD/AD).
const inheritedFolder = `${DIR} NT AUTHORITY\\SYSTEM:(I)(OI)(CI)(F)
                         BUILTIN\\Administrators:(I)(OI)(CI)(F)
                         CREATOR OWNER:(I)(OI)(CI)(IO)(F)
                         BUILTIN\\Users:(I)(OI)(CI)(RX)
                         BUILTIN\\Users:(I)(CI)(WD,AD,WEA,WA)

Successfully processed 1 files; Failed processing 0 files
`;
// What the MSI's LockPermissions table sets.
const lockedFolder = `${DIR} NT AUTHORITY\\SYSTEM:(OI)(CI)(F)
                         BUILTIN\\Administrators:(OI)(CI)(F)
                         BUILTIN\\Users:(OI)(CI)(RX)

Successfully processed 1 files; Failed processing 0 files
`;
const lockedFile = `${FILE} NT AUTHORITY\\SYSTEM:(I)(F)
                                     BUILTIN\\Administrators:(I)(F)
                                     BUILTIN\\Users:(I)(RX)

Successfully processed 1 files; Failed processing 0 files
`;
const plantedFile = `${FILE} NT AUTHORITY\\SYSTEM:(I)(F)
                                     BUILTIN\\Administrators:(I)(F)
                                     BUILTIN\\Users:(I)(RX)
                                     DESKTOP-1\\mallory:(F)

Successfully processed 1 files; Failed processing 0 files
`;

describe('icacls listings', () => {
  it('parses principals, rights and inherit-only flags', () => {
    expect(parseIcacls(inheritedFolder, DIR)).toEqual([
      { principal: 'NT AUTHORITY\\SYSTEM', rights: ['F'], inheritOnly: false },
      { principal: 'BUILTIN\\Administrators', rights: ['F'], inheritOnly: false },
      { principal: 'CREATOR OWNER', rights: ['F'], inheritOnly: true },
      { principal: 'BUILTIN\\Users', rights: ['RX'], inheritOnly: false },
      { principal: 'BUILTIN\\Users', rights: ['WD', 'AD', 'WEA', 'WA'], inheritOnly: false },
    ]);
  });

  it("finds that Users may create files in a folder with ProgramData's inherited ACL", () => {
    expect(untrustedWriter(parseIcacls(inheritedFolder, DIR), true)).toBe('BUILTIN\\Users');
  });

  it('accepts the ACL the MSI sets, on the folder and the file', () => {
    expect(untrustedWriter(parseIcacls(lockedFolder, DIR), true)).toBeUndefined();
    expect(untrustedWriter(parseIcacls(lockedFile, FILE), false)).toBeUndefined();
  });

  it('finds a user who was granted full control of the file', () => {
    expect(untrustedWriter(parseIcacls(plantedFile, FILE), false)).toBe('DESKTOP-1\\mallory');
  });
});

describe('assertManagedAclSafe', () => {
  const listings = (folder: string, file: string) => (p: string) => (p === DIR ? folder : file);

  it('passes under the MSI ACL', () => {
    expect(() => assertManagedAclSafe(FILE, DIR, listings(lockedFolder, lockedFile))).not.toThrow();
  });

  it('refuses a folder any user may create files in (exit 6, the icacls fix in the hint)', () => {
    let err: unknown;
    try {
      assertManagedAclSafe(FILE, DIR, listings(inheritedFolder, lockedFile));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      code: 'ERR_UNSAFE_PERMISSIONS',
      exitCode: 6,
      message: `managed config folder ${DIR}: BUILTIN\\Users may write it`,
    });
    expect((err as { hint: string }).hint).toContain(`icacls "${DIR}" /inheritance:r`);
  });

  it('refuses a file another user may write', () => {
    expect(() => assertManagedAclSafe(FILE, DIR, listings(lockedFolder, plantedFile))).toThrow(
      `managed config file ${FILE}: DESKTOP-1\\mallory may write it`,
    );
  });

  it('refuses when the ACL cannot be read', () => {
    expect(() =>
      assertManagedAclSafe(FILE, DIR, () => {
        throw new Error('icacls not found');
      }),
    ).toThrow(`managed config ${DIR}: its permissions cannot be read (icacls failed)`);
  });
});
