/**
 * A small ad hoc code signer for thin 64-bit Mach-O executables, as linkers and
 * `codesign -s -` do it: one SHA-256 CodeDirectory holding a hash of every 4096-byte page
 * up to the signature, an empty requirements set and an empty signature wrapper.
 *
 * Why: postject strips the Mach-O signature and Apple Silicon refuses to run unsigned
 * code; no signer ships in npm or Debian here. Verified by recomputing the page hashes of
 * Apple-verified official Node binaries and comparing them with their own signatures
 * (test/release/macho.test.ts), and by the self-check in `verifyAdhoc`.
 *
 * Blob layouts: Apple's xnu `osfmk/kern/cs_blobs.h` (CS_CodeDirectory, CS_SuperBlob).
 */
import { createHash } from 'node:crypto';

const MH_MAGIC_64 = 0xfeedfacf;
const MH_EXECUTE = 0x2;
const LC_SEGMENT_64 = 0x19;
const LC_CODE_SIGNATURE = 0x1d;

const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY = 0xfade0c02;
const CSMAGIC_REQUIREMENTS = 0xfade0c01;
const CSMAGIC_BLOBWRAPPER = 0xfade0b01;
const CSSLOT_CODEDIRECTORY = 0;
const CSSLOT_REQUIREMENTS = 2;
const CSSLOT_ALTERNATE_CODEDIRECTORIES = 0x1000;
const CSSLOT_SIGNATURESLOT = 0x10000;
const CS_ADHOC = 0x2;
const CS_HASHTYPE_SHA256 = 2;
const CS_EXECSEG_MAIN_BINARY = 0x1;
const CD_VERSION = 0x20400;
const CD_HEADER_SIZE = 88; // through execSegFlags (version 0x20400)
const PAGE_SHIFT = 12; // codesign hashes 4 KiB pages on every architecture
const PAGE_SIZE = 1 << PAGE_SHIFT;
const HASH_SIZE = 32;

/** Load commands and segments of a thin 64-bit little-endian Mach-O. */
export function parseMachO(buf) {
  if (buf.readUInt32LE(0) !== MH_MAGIC_64) throw new Error('not a thin 64-bit little-endian Mach-O');
  const header = {
    cputype: buf.readInt32LE(4),
    filetype: buf.readUInt32LE(12),
    ncmds: buf.readUInt32LE(16),
    sizeofcmds: buf.readUInt32LE(20),
  };
  const commands = [];
  const segments = [];
  let codeSignature = null;
  let minSectionOffset = Number.POSITIVE_INFINITY;
  let off = 32;
  for (let i = 0; i < header.ncmds; i++) {
    const cmd = buf.readUInt32LE(off);
    const cmdsize = buf.readUInt32LE(off + 4);
    commands.push({ cmd, cmdsize, offset: off });
    if (cmd === LC_SEGMENT_64) {
      const name = buf.toString('latin1', off + 8, off + 24).replace(/\0+$/, '');
      const seg = {
        name,
        offset: off,
        vmaddr: buf.readBigUInt64LE(off + 24),
        vmsize: buf.readBigUInt64LE(off + 32),
        fileoff: Number(buf.readBigUInt64LE(off + 40)),
        filesize: Number(buf.readBigUInt64LE(off + 48)),
        nsects: buf.readUInt32LE(off + 64),
      };
      for (let s = 0; s < seg.nsects; s++) {
        const so = off + 72 + s * 80;
        const sectOffset = buf.readUInt32LE(so + 48);
        const flags = buf.readUInt32LE(so + 64);
        const type = flags & 0xff;
        // zerofill sections (S_ZEROFILL 1, S_GB_ZEROFILL 0xc, S_THREAD_LOCAL_ZEROFILL 0x12) have no file bytes
        if (sectOffset !== 0 && type !== 0x1 && type !== 0xc && type !== 0x12) {
          minSectionOffset = Math.min(minSectionOffset, sectOffset);
        }
      }
      segments.push(seg);
    } else if (cmd === LC_CODE_SIGNATURE) {
      codeSignature = {
        offset: off,
        dataoff: buf.readUInt32LE(off + 8),
        datasize: buf.readUInt32LE(off + 12),
      };
    }
    off += cmdsize;
  }
  return { header, commands, segments, codeSignature, endOfCommands: off, minSectionOffset };
}

/** SHA-256 of each 4 KiB page of buf[0, codeLimit). */
export function pageHashes(buf, codeLimit, pageSize = PAGE_SIZE, hashAlgorithm = 'sha256') {
  const hashes = [];
  for (let p = 0; p < codeLimit; p += pageSize) {
    hashes.push(
      createHash(hashAlgorithm)
        .update(buf.subarray(p, Math.min(p + pageSize, codeLimit)))
        .digest(),
    );
  }
  return hashes;
}

/** Every CodeDirectory in an embedded signature, decoded (big-endian blobs). */
export function readSignature(buf) {
  const macho = parseMachO(buf);
  if (!macho.codeSignature) return null;
  const base = macho.codeSignature.dataoff;
  if (buf.readUInt32BE(base) !== CSMAGIC_EMBEDDED_SIGNATURE) throw new Error('bad superblob magic');
  const count = buf.readUInt32BE(base + 8);
  const blobs = [];
  for (let i = 0; i < count; i++) {
    const type = buf.readUInt32BE(base + 12 + i * 8);
    const offset = buf.readUInt32BE(base + 16 + i * 8);
    const at = base + offset;
    const magic = buf.readUInt32BE(at);
    const length = buf.readUInt32BE(at + 4);
    const blob = { type, magic, length, at };
    if (magic === CSMAGIC_CODEDIRECTORY)
      blob.codeDirectory = decodeCodeDirectory(buf.subarray(at, at + length));
    blobs.push(blob);
  }
  return { ...macho.codeSignature, blobs };
}

export function decodeCodeDirectory(cd) {
  const version = cd.readUInt32BE(8);
  const d = {
    version,
    flags: cd.readUInt32BE(12),
    hashOffset: cd.readUInt32BE(16),
    identOffset: cd.readUInt32BE(20),
    nSpecialSlots: cd.readUInt32BE(24),
    nCodeSlots: cd.readUInt32BE(28),
    codeLimit: cd.readUInt32BE(32),
    hashSize: cd[36],
    hashType: cd[37],
    platform: cd[38],
    pageSize: cd[39] === 0 ? 0 : 2 ** cd[39],
  };
  d.identifier = cd.toString('latin1', d.identOffset, cd.indexOf(0, d.identOffset));
  if (version >= 0x20400) {
    d.execSegBase = Number(cd.readBigUInt64BE(64));
    d.execSegLimit = Number(cd.readBigUInt64BE(72));
    d.execSegFlags = Number(cd.readBigUInt64BE(80));
  }
  d.codeHashes = [];
  for (let i = 0; i < d.nCodeSlots; i++) {
    const o = d.hashOffset + i * d.hashSize;
    d.codeHashes.push(cd.subarray(o, o + d.hashSize));
  }
  d.specialHashes = [];
  for (let i = 1; i <= d.nSpecialSlots; i++) {
    const o = d.hashOffset - i * d.hashSize;
    d.specialHashes.push(cd.subarray(o, o + d.hashSize));
  }
  d.cdHash = createHash(d.hashType === CS_HASHTYPE_SHA256 ? 'sha256' : 'sha1')
    .update(cd)
    .digest()
    .subarray(0, 20);
  return d;
}

function blobHeader(magic, length) {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(magic, 0);
  b.writeUInt32BE(length, 4);
  return b;
}

function buildCodeDirectory(
  buf,
  { identifier, codeLimit, execSegBase, execSegLimit, execSegFlags, specialSlots },
) {
  const ident = Buffer.from(`${identifier}\0`, 'latin1');
  const hashes = pageHashes(buf, codeLimit);
  const nSpecial = specialSlots.length;
  const hashOffset = CD_HEADER_SIZE + ident.length + nSpecial * HASH_SIZE;
  const length = hashOffset + hashes.length * HASH_SIZE;
  const cd = Buffer.alloc(length);
  cd.writeUInt32BE(CSMAGIC_CODEDIRECTORY, 0);
  cd.writeUInt32BE(length, 4);
  cd.writeUInt32BE(CD_VERSION, 8);
  cd.writeUInt32BE(CS_ADHOC, 12);
  cd.writeUInt32BE(hashOffset, 16);
  cd.writeUInt32BE(CD_HEADER_SIZE, 20);
  cd.writeUInt32BE(nSpecial, 24);
  cd.writeUInt32BE(hashes.length, 28);
  cd.writeUInt32BE(codeLimit, 32);
  cd[36] = HASH_SIZE;
  cd[37] = CS_HASHTYPE_SHA256;
  cd[38] = 0; // platform
  cd[39] = PAGE_SHIFT;
  // spare2, scatterOffset, teamOffset, spare3, codeLimit64 stay 0
  cd.writeBigUInt64BE(BigInt(execSegBase), 64);
  cd.writeBigUInt64BE(BigInt(execSegLimit), 72);
  cd.writeBigUInt64BE(BigInt(execSegFlags), 80);
  ident.copy(cd, CD_HEADER_SIZE);
  // special slot -n .. -1 are stored in that order before hashOffset
  for (let i = 0; i < nSpecial; i++) {
    specialSlots[i].copy(cd, hashOffset - (i + 1) * HASH_SIZE);
  }
  hashes.forEach((h, i) => {
    h.copy(cd, hashOffset + i * HASH_SIZE);
  });
  return cd;
}

function align(n, a) {
  return Math.ceil(n / a) * a;
}

/**
 * Returns a new buffer: `input` (a thin 64-bit Mach-O executable, signed or not) with an
 * ad hoc signature. An existing signature is replaced; without one, an LC_CODE_SIGNATURE
 * is added in the header padding. The signature goes at the end of __LINKEDIT, which must
 * be the last thing in the file.
 */
export function signAdhoc(input, { identifier }) {
  let macho = parseMachO(input);
  if (macho.header.filetype !== MH_EXECUTE) throw new Error('only MH_EXECUTE files are supported');
  const linkedit = macho.segments.find((s) => s.name === '__LINKEDIT');
  const text = macho.segments.find((s) => s.name === '__TEXT');
  if (!linkedit || !text) throw new Error('no __LINKEDIT or __TEXT segment');
  let codeLimit;
  if (macho.codeSignature) {
    codeLimit = macho.codeSignature.dataoff;
  } else {
    if (linkedit.fileoff + linkedit.filesize !== input.length) {
      throw new Error('__LINKEDIT is not at the end of the file');
    }
    codeLimit = align(input.length, 16);
  }
  if (linkedit.fileoff + linkedit.filesize < codeLimit && macho.codeSignature) {
    throw new Error('signature is not inside __LINKEDIT');
  }
  // Size the signature first (the page count depends only on codeLimit).
  const requirements = Buffer.alloc(12);
  requirements.writeUInt32BE(CSMAGIC_REQUIREMENTS, 0);
  requirements.writeUInt32BE(12, 4);
  requirements.writeUInt32BE(0, 8); // no requirements
  const wrapper = blobHeader(CSMAGIC_BLOBWRAPPER, 8); // empty CMS: ad hoc
  const nPages = Math.ceil(codeLimit / PAGE_SIZE);
  const identLen = Buffer.byteLength(identifier, 'latin1') + 1;
  const cdLen = CD_HEADER_SIZE + identLen + 2 * HASH_SIZE + nPages * HASH_SIZE;
  const superHeader = 12 + 3 * 8;
  const sigLen = superHeader + cdLen + requirements.length + wrapper.length;
  const dataSize = align(sigLen, 16);

  const out = Buffer.alloc(codeLimit + dataSize);
  input.copy(out, 0, 0, Math.min(input.length, codeLimit));
  // Header: add or update LC_CODE_SIGNATURE.
  if (macho.codeSignature) {
    out.writeUInt32LE(codeLimit, macho.codeSignature.offset + 8);
    out.writeUInt32LE(dataSize, macho.codeSignature.offset + 12);
  } else {
    const at = macho.endOfCommands;
    if (at + 16 > macho.minSectionOffset)
      throw new Error('no room in the Mach-O header for LC_CODE_SIGNATURE');
    if (out.subarray(at, at + 16).some((b) => b !== 0)) throw new Error('header padding is not empty');
    out.writeUInt32LE(LC_CODE_SIGNATURE, at);
    out.writeUInt32LE(16, at + 4);
    out.writeUInt32LE(codeLimit, at + 8);
    out.writeUInt32LE(dataSize, at + 12);
    out.writeUInt32LE(macho.header.ncmds + 1, 16);
    out.writeUInt32LE(macho.header.sizeofcmds + 16, 20);
  }
  // __LINKEDIT now ends at the end of the signature.
  const newLinkeditFileSize = codeLimit + dataSize - linkedit.fileoff;
  out.writeBigUInt64LE(BigInt(newLinkeditFileSize), linkedit.offset + 48);
  const vmPage = macho.header.cputype === 0x0100000c ? 0x4000 : 0x1000; // arm64: 16 KiB pages
  const newVmSize = BigInt(align(newLinkeditFileSize, vmPage));
  if (newVmSize > linkedit.vmsize) out.writeBigUInt64LE(newVmSize, linkedit.offset + 32);
  macho = parseMachO(out);

  const cd = buildCodeDirectory(out, {
    identifier,
    codeLimit,
    execSegBase: text.fileoff,
    execSegLimit: text.filesize,
    execSegFlags: CS_EXECSEG_MAIN_BINARY,
    // slot -1: Info.plist (none, zeros); slot -2: the requirements blob
    specialSlots: [Buffer.alloc(HASH_SIZE), createHash('sha256').update(requirements).digest()],
  });
  if (cd.length !== cdLen) throw new Error('internal: CodeDirectory size mismatch');
  const sig = Buffer.alloc(dataSize);
  sig.writeUInt32BE(CSMAGIC_EMBEDDED_SIGNATURE, 0);
  sig.writeUInt32BE(sigLen, 4);
  sig.writeUInt32BE(3, 8);
  const entries = [
    [CSSLOT_CODEDIRECTORY, cd],
    [CSSLOT_REQUIREMENTS, requirements],
    [CSSLOT_SIGNATURESLOT, wrapper],
  ];
  let at = superHeader;
  entries.forEach(([type, blob], i) => {
    sig.writeUInt32BE(type, 12 + i * 8);
    sig.writeUInt32BE(at, 16 + i * 8);
    blob.copy(sig, at);
    at += blob.length;
  });
  sig.copy(out, codeLimit);
  return out;
}

/**
 * Checks an ad hoc (or any SHA-256) signature the way the kernel does for page validation:
 * every code page hash matches, the requirements slot matches, __LINKEDIT holds the
 * signature and the CodeDirectory covers the file up to the signature. Returns a list of
 * problems (empty when the signature is consistent).
 */
export function verifySignature(buf) {
  const problems = [];
  const sig = readSignature(buf);
  if (!sig) return ['no LC_CODE_SIGNATURE'];
  const macho = parseMachO(buf);
  const linkedit = macho.segments.find((s) => s.name === '__LINKEDIT');
  if (linkedit.fileoff + linkedit.filesize < sig.dataoff + sig.datasize)
    problems.push('signature outside __LINKEDIT');
  if (sig.dataoff + sig.datasize > buf.length) problems.push('signature past end of file');
  const cds = sig.blobs.filter(
    (b) =>
      b.codeDirectory &&
      (b.type === CSSLOT_CODEDIRECTORY ||
        (b.type >= CSSLOT_ALTERNATE_CODEDIRECTORIES && b.type < CSSLOT_ALTERNATE_CODEDIRECTORIES + 5)),
  );
  if (cds.length === 0) problems.push('no CodeDirectory');
  for (const { codeDirectory: cd } of cds) {
    const algo = cd.hashType === CS_HASHTYPE_SHA256 ? 'sha256' : cd.hashType === 1 ? 'sha1' : null;
    if (!algo) {
      problems.push(`unknown hash type ${cd.hashType}`);
      continue;
    }
    if (cd.codeLimit !== sig.dataoff)
      problems.push(`codeLimit ${cd.codeLimit} != signature offset ${sig.dataoff}`);
    const hashes = pageHashes(buf, cd.codeLimit, cd.pageSize, algo);
    if (hashes.length !== cd.nCodeSlots)
      problems.push(`nCodeSlots ${cd.nCodeSlots} != ${hashes.length} pages`);
    const bad = hashes.findIndex(
      (h, i) => !cd.codeHashes[i] || !h.subarray(0, cd.hashSize).equals(cd.codeHashes[i]),
    );
    if (bad >= 0) problems.push(`page ${bad} hash mismatch`);
    const req = sig.blobs.find((b) => b.type === CSSLOT_REQUIREMENTS);
    if (req && cd.nSpecialSlots >= 2) {
      const h = createHash(algo)
        .update(buf.subarray(req.at, req.at + req.length))
        .digest()
        .subarray(0, cd.hashSize);
      if (!h.equals(cd.specialHashes[1])) problems.push('requirements slot hash mismatch');
    }
  }
  return problems;
}
