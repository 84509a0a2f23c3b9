/**
 * The ad hoc Mach-O signer (scripts/release/macho.mjs) checked against Apple: the official
 * Node binaries carry Developer ID signatures that macOS verified, so our page hashing must
 * reproduce their CodeDirectory hashes exactly. Needs the Node runtimes that
 * `npm run package` extracts into .cache/package/node/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain .mjs build script without type declarations
import * as macho from '../../scripts/release/macho.mjs';
import { RELEASE_TESTS, ROOT, releaseFile } from './release-env.js';

const official = (id: string) => path.join(ROOT, '.cache', 'package', 'node', id, 'node');

describe.runIf(RELEASE_TESTS)('ad hoc Mach-O signing', () => {
  for (const id of ['darwin-x64', 'darwin-arm64']) {
    it(`reproduces Apple's page hashes on the official ${id} Node binary`, () => {
      const buf = fs.readFileSync(official(id));
      const sig = macho.readSignature(buf);
      const cd = sig.blobs.find((b: { type: number }) => b.type === 0).codeDirectory;
      expect(cd.hashType).toBe(2); // SHA-256
      expect(cd.pageSize).toBe(4096);
      const ours = macho.pageHashes(buf, cd.codeLimit);
      expect(ours.length).toBe(cd.nCodeSlots);
      expect(ours.map((h: Buffer) => h.toString('hex'))).toEqual(
        cd.codeHashes.map((h: Buffer) => h.toString('hex')),
      );
      expect(macho.verifySignature(buf)).toEqual([]);
    });

    it(`re-signing the official ${id} binary keeps every page hash but the header's`, () => {
      const buf = fs.readFileSync(official(id));
      const before = macho.readSignature(buf).blobs[0].codeDirectory;
      const signed = macho.signAdhoc(buf, { identifier: 'node' });
      const after = macho.readSignature(signed).blobs[0].codeDirectory;
      expect(macho.verifySignature(signed)).toEqual([]);
      expect(after.codeLimit).toBe(before.codeLimit);
      expect(after.execSegLimit).toBe(before.execSegLimit);
      expect(after.execSegFlags).toBe(before.execSegFlags);
      expect(after.codeHashes.slice(1).map((h: Buffer) => h.toString('hex'))).toEqual(
        before.codeHashes.slice(1).map((h: Buffer) => h.toString('hex')),
      );
      // Page 0 holds LC_CODE_SIGNATURE's size and __LINKEDIT's size, which change.
      expect(after.codeHashes[0].equals(before.codeHashes[0])).toBe(false);
    });

    it(`keybroker-${id} carries a consistent ad hoc signature and the SEA segment`, () => {
      const buf = fs.readFileSync(releaseFile(`keybroker-${id}`));
      expect(macho.verifySignature(buf)).toEqual([]);
      const sig = macho.readSignature(buf);
      expect(sig.blobs.map((b: { type: number; magic: number }) => [b.type, b.magic])).toEqual([
        [0, 0xfade0c02],
        [2, 0xfade0c01],
        [0x10000, 0xfade0b01],
      ]);
      const cd = sig.blobs[0].codeDirectory;
      expect({
        identifier: cd.identifier,
        flags: cd.flags,
        hashType: cd.hashType,
        version: cd.version,
      }).toEqual({
        identifier: 'keybroker',
        flags: 0x2,
        hashType: 2,
        version: 0x20400,
      });
      expect(cd.nSpecialSlots).toBe(2);
      const segments = macho.parseMachO(buf).segments.map((s: { name: string }) => s.name);
      expect(segments).toContain('NODE_SEA');
      expect(segments.at(-1)).toBe('__LINKEDIT');
    });
  }

  it('a corrupted page is caught by the verifier', () => {
    const buf = Buffer.from(fs.readFileSync(releaseFile('keybroker-darwin-arm64')));
    buf.writeUInt8(buf.readUInt8(5 * 4096 + 17) ^ 0xff, 5 * 4096 + 17);
    expect(macho.verifySignature(buf)).toEqual(['page 5 hash mismatch']);
  });
});
