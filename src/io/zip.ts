/**
 * Minimal read-only zip archive reader (enough for PyTorch >= 1.6 `.pt` files).
 *
 * Reads the end-of-central-directory record and the central directory, then the local headers on
 * demand. Supports method 0 (stored; returned as a zero-copy view) and method 8 (deflate, via
 * `inflateRawSync`, bounded by the entry's declared size so a small entry cannot inflate to
 * gigabytes); verifies CRC-32. Entries over `maxEntryBytes` and archives whose entries read so far
 * add up to more than `maxTotalBytes` are refused. Archives that need zip64 (a classic field set to
 * 0xFFFF/0xFFFFFFFF), encryption, multi-disk archives and other methods
 * are rejected with a `CheckpointError`.
 */
import { inflateRawSync } from 'node:zlib';
import { CheckpointError } from './errors.js';

/** One central-directory record. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  /** Offset of the local file header. */
  localHeaderOffset: number;
}

/** Limits of a {@link ZipArchive}. */
export interface ZipLimits {
  /** Largest entry size read (default 2 GiB). */
  maxEntryBytes?: number;
  /** Largest total of the entries read from one archive (default 8 GiB). */
  maxTotalBytes?: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE, as used by zip and PNG) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A parsed zip archive over an in-memory buffer; entries are extracted lazily. */
export class ZipArchive {
  /** Entries by name, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly bytes: Uint8Array;
  private readonly dv: DataView;
  private readonly label: string;
  private readonly maxEntry: number;
  private readonly maxTotal: number;
  private total = 0;

  /**
   * Parse the central directory of `bytes`.
   * @param label name of the archive used in error messages (e.g. the file path)
   * @param limits size limits of the entries read
   * @throws CheckpointError if `bytes` is not a (supported) zip archive or is truncated
   */
  constructor(bytes: Uint8Array, label = 'zip archive', { maxEntryBytes = 2 ** 31, maxTotalBytes = 2 ** 33 }: ZipLimits = {}) {
    this.maxEntry = maxEntryBytes;
    this.maxTotal = maxTotalBytes;
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.label = label;
    this.entries = this.readCentralDirectory();
  }

  private fail(msg: string): never {
    throw new CheckpointError(`${this.label}: ${msg}`);
  }

  private findEocd(): number {
    const b = this.bytes;
    const min = Math.max(0, b.length - 22 - 0xffff);
    for (let p = b.length - 22; p >= min; p--) {
      if (b[p] === 0x50 && b[p + 1] === 0x4b && this.dv.getUint32(p, true) === SIG_EOCD) {
        // a genuine record's comment runs exactly to the end of the file
        if (p + 22 + this.dv.getUint16(p + 20, true) === b.length) return p;
      }
    }
    if (b.length >= 2 && b[0] === 0x80 && b[1] <= 5) {
      this.fail('not a zip archive: looks like a legacy (pre-1.6) torch.save pickle stream, which is not supported');
    }
    if (b.length >= 4 && this.dv.getUint32(0, true) === SIG_LOCAL) {
      this.fail(`truncated zip archive: no end-of-central-directory record in ${b.length} bytes`);
    }
    return this.fail(`not a zip archive (no end-of-central-directory record in ${b.length} bytes)`);
  }

  private readCentralDirectory(): Map<string, ZipEntry> {
    const dv = this.dv;
    const eocd = this.findEocd();
    const disk = dv.getUint16(eocd + 4, true);
    const cdDisk = dv.getUint16(eocd + 6, true);
    const countHere = dv.getUint16(eocd + 8, true);
    const count = dv.getUint16(eocd + 10, true);
    const cdSize = dv.getUint32(eocd + 12, true);
    const cdOffset = dv.getUint32(eocd + 16, true);
    // PyTorch's writer always appends a zip64 end record + locator, but also fills the classic record
    // correctly; the zip64 records are only needed (and then unsupported) when a field overflows.
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      this.fail('zip64 archives are not supported (end-of-central-directory fields are 0xFFFF/0xFFFFFFFF: more than 65534 entries or 4 GiB)');
    }
    if (disk !== 0 || cdDisk !== 0 || countHere !== count) this.fail('multi-disk zip archives are not supported');
    if (cdOffset + cdSize > eocd) {
      this.fail(`truncated or corrupt zip: central directory [${cdOffset}, ${cdOffset + cdSize}) overlaps the end record at ${eocd}`);
    }
    const entries = new Map<string, ZipEntry>();
    const decoder = new TextDecoder('utf-8');
    let p = cdOffset;
    for (let i = 0; i < count; i++) {
      if (p + 46 > eocd || dv.getUint32(p, true) !== SIG_CENTRAL) {
        this.fail(`corrupt zip: central directory record ${i} of ${count} at offset ${p} has a bad signature`);
      }
      const flags = dv.getUint16(p + 8, true);
      const method = dv.getUint16(p + 10, true);
      const crc = dv.getUint32(p + 16, true);
      const compressedSize = dv.getUint32(p + 20, true);
      const size = dv.getUint32(p + 24, true);
      const nameLen = dv.getUint16(p + 28, true);
      const extraLen = dv.getUint16(p + 30, true);
      const commentLen = dv.getUint16(p + 32, true);
      const localHeaderOffset = dv.getUint32(p + 42, true);
      if (p + 46 + nameLen > eocd) this.fail(`corrupt zip: central directory record ${i} runs past the directory`);
      const name = decoder.decode(this.bytes.subarray(p + 46, p + 46 + nameLen));
      if (compressedSize === 0xffffffff || size === 0xffffffff || localHeaderOffset === 0xffffffff) {
        this.fail(`zip64 archives are not supported (entry ${JSON.stringify(name)} has zip64 sizes)`);
      }
      if (flags & 1) this.fail(`encrypted zip entries are not supported (entry ${JSON.stringify(name)})`);
      if (entries.has(name)) this.fail(`corrupt zip: duplicate entry ${JSON.stringify(name)}`);
      entries.set(name, { name, method, crc32: crc, compressedSize, size, localHeaderOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return entries;
  }

  /** True if the archive has an entry called `name`. */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * Contents of entry `name` (stored entries: a view into the archive buffer; deflated: a new buffer).
   * @throws CheckpointError if absent, truncated, of an unsupported method, or failing its CRC
   */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (e === undefined) return this.fail(`missing entry ${JSON.stringify(name)}`);
    const dv = this.dv;
    const h = e.localHeaderOffset;
    if (h + 30 > this.bytes.length || dv.getUint32(h, true) !== SIG_LOCAL) {
      this.fail(`corrupt zip: local header of ${JSON.stringify(name)} at offset ${h} is missing or has a bad signature`);
    }
    const start = h + 30 + dv.getUint16(h + 26, true) + dv.getUint16(h + 28, true);
    const end = start + e.compressedSize;
    if (end > this.bytes.length) {
      this.fail(`truncated zip: entry ${JSON.stringify(name)} needs bytes [${start}, ${end}) but the archive has ${this.bytes.length}`);
    }
    if (e.size > this.maxEntry) this.fail(`entry ${JSON.stringify(name)} is ${e.size} bytes, more than the ${this.maxEntry}-byte limit of one archive entry`);
    if (this.total + e.size > this.maxTotal) this.fail(`entries read add up to more than the ${this.maxTotal}-byte limit of one archive`);
    const raw = this.bytes.subarray(start, end);
    let out: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) this.fail(`corrupt zip: stored entry ${JSON.stringify(name)} has compressed size ${e.compressedSize} != size ${e.size}`);
      out = raw;
    } else if (e.method === 8) {
      try {
        // one byte more than declared tells "inflates to more" from "exactly as declared"
        const buf = inflateRawSync(raw, { maxOutputLength: e.size + 1 });
        out = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength); // plain Uint8Array, not Buffer
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
          this.fail(`entry ${JSON.stringify(name)} inflates to more than the ${e.size} bytes it declares`);
        return this.fail(`corrupt deflate data in entry ${JSON.stringify(name)}: ${(err as Error).message}`);
      }
      if (out.length > e.size) this.fail(`entry ${JSON.stringify(name)} inflates to more than the ${e.size} bytes it declares`);
      if (out.length !== e.size) this.fail(`entry ${JSON.stringify(name)} inflated to ${out.length} bytes, expected ${e.size}`);
    } else {
      return this.fail(`entry ${JSON.stringify(name)} uses compression method ${e.method}; only 0 (stored) and 8 (deflate) are supported`);
    }
    this.total += out.length;
    const c = crc32(out);
    if (c !== e.crc32) {
      this.fail(`CRC-32 mismatch in entry ${JSON.stringify(name)}: computed ${c.toString(16)}, expected ${e.crc32.toString(16)}`);
    }
    return out;
  }
}
