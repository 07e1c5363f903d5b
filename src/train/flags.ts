/**
 * The one command-line parser of every `mega` subcommand.
 *
 * A schema maps snake_case option names to specs; on the command line they are `--kebab-case`
 * (`--name value`, `--name=value`; booleans `--flag`, `--no-flag`, `--flag=true|false`; lists take
 * one or more values, `--pixel-normalization 0.48 0.24`). A spec may have a one-letter `short` form
 * (`-a NAME`), be an `aliasOf` another option (its value is stored under that one), or be an
 * `infra` flag: accepted for fairseq compatibility, its value read and dropped, with one note line
 * saying what it becomes here. Anything else starting with `-` is an error naming it:
 * `unknown option --foo (see mega train --help)` (ConfigError: exit 2).
 */
import { ConfigError } from './errors.js';

/** Kind of value an option takes. */
export type OptType = 'number' | 'int' | 'string' | 'boolean' | 'list';

/** The value type of an option of type `T`. */
export type OptValue<T extends OptType> = T extends 'number' | 'int' ? number : T extends 'boolean' ? boolean : T extends 'list' ? (string | number)[] : string;

/** One option of a schema. */
export interface OptSpec {
  /** Value type (`list`: one or more values, kept as strings or numbers). */
  type: OptType;
  /** One-line help. */
  help: string;
  /** Allowed values (strings). */
  choices?: readonly string[];
  /** A model setting (passed to the model builder; overrides the arch preset). */
  model?: boolean;
  /** Help section. */
  group: 'main' | 'data' | 'optim' | 'model' | 'run' | 'fairseq';
  /** Placeholder in the help text. */
  meta?: string;
  /** One-letter form (`-a`). */
  short?: string;
  /** Store the value under this other option (fairseq's alternative names). */
  aliasOf?: string;
  /** Accepted and dropped: what the flag becomes here (printed as one note line). */
  infra?: string;
  /** May be given several times; the values are collected in an array. */
  repeat?: boolean;
}

/** A schema: snake_case name → spec. */
export type OptSchema = Readonly<Record<string, OptSpec>>;

/** The result of parsing. */
export interface ParsedFlags {
  /** Given values by snake_case name (aliases resolved; infra flags absent). */
  values: Record<string, unknown>;
  /** Arguments that are not options, in order. */
  positionals: string[];
  /** One line per infra flag given: `--cpu: ...`. */
  notes: string[];
}

/** `--foo-bar` / `foo_bar` / `fooBar` → `foo_bar`. */
export function canonicalKey(k: string): string {
  return k
    .replace(/^--?/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase();
}

/** `foo_bar` → `--foo-bar`. */
export function flagName(key: string): string {
  return `--${key.replace(/_/g, '-')}`;
}

function typeName(t: OptType): string {
  return t === 'int' ? 'an integer' : t === 'number' ? 'a number' : t === 'boolean' ? 'true or false' : t === 'list' ? 'one or more values' : 'a string';
}

/**
 * Converts / checks a value for an option.
 * @param where prefix of the message (`--lr` or `config.json: "lr"`)
 * @throws ConfigError naming `where`, the value and what was expected
 */
export function coerce(spec: OptSpec, raw: unknown, where: string, fromText: boolean): unknown {
  let v = raw;
  if (fromText && typeof raw === 'string') {
    if (spec.type === 'number' || spec.type === 'int') v = raw.trim() === '' ? NaN : Number(raw);
    else if (spec.type === 'boolean') v = /^(true|1)$/i.test(raw) ? true : /^(false|0)$/i.test(raw) ? false : raw;
  }
  const bad = (): never => {
    // JSON.parse reads 1e999 as Infinity, which JSON.stringify would print as null
    if (raw === Infinity || raw === -Infinity)
      throw new ConfigError(`${where} is too large for a number (it reads as ${raw}): expected ${typeName(spec.type)}`);
    throw new ConfigError(`${where} = ${JSON.stringify(raw)}: expected ${typeName(spec.type)}${spec.choices ? ` (one of ${spec.choices.join(', ')})` : ''}`);
  };
  if (spec.type === 'number' && (typeof v !== 'number' || !Number.isFinite(v))) bad();
  if (spec.type === 'int' && (typeof v !== 'number' || !Number.isInteger(v))) bad();
  if (spec.type === 'boolean' && typeof v !== 'boolean') bad();
  if (spec.type === 'list') {
    const xs = Array.isArray(v) ? v : [v];
    if (xs.length === 0 || xs.some((x) => typeof x !== 'string' && typeof x !== 'number')) bad();
    v = xs.map((x) => (typeof x === 'string' && x.trim() !== '' && Number.isFinite(Number(x)) ? Number(x) : x));
  }
  if (spec.type === 'string') {
    if (typeof v === 'number' && !fromText) v = String(v);
    if (typeof v !== 'string') bad();
  }
  if (spec.choices && !spec.choices.includes(v as string)) bad();
  return v;
}

const isNumberText = (a: string): boolean => /^-(\d|\.\d)/.test(a);

/**
 * Parses command-line arguments against a schema (see the file comment).
 * @throws ConfigError for an unknown option, a missing or ill-typed value
 */
export function parseFlags(argv: readonly string[], schema: OptSchema, command: string): ParsedFlags {
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const notes: string[] = [];
  const shorts = new Map<string, string>();
  for (const [k, s] of Object.entries(schema)) if (s.short) shorts.set(s.short, k);
  const unknown = (flag: string): never => {
    throw new ConfigError(`unknown option ${flag} (see mega ${command} --help)`);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-' || isNumberText(a)) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const flag = eq >= 0 ? a.slice(0, eq) : a;
    let key: string;
    if (!a.startsWith('--')) {
      if (flag === '-h') {
        values.help = true;
        continue;
      }
      const k = flag.length === 2 ? shorts.get(flag.slice(1)) : undefined;
      if (k === undefined) return unknown(flag);
      key = k;
    } else {
      key = canonicalKey(flag);
    }
    if (key === 'help') {
      values.help = true;
      continue;
    }
    let spec = schema[key];
    let negated = false;
    if (!spec && key.startsWith('no_') && schema[key.slice(3)]?.type === 'boolean') {
      key = key.slice(3);
      spec = schema[key];
      negated = true;
    }
    if (!spec) return unknown(flag);
    let value: unknown;
    if (spec.type === 'boolean') {
      value = eq >= 0 ? coerce(spec, a.slice(eq + 1), flag, true) : true;
      if (negated) value = !value;
    } else if (spec.type === 'list') {
      const xs: string[] = eq >= 0 ? [a.slice(eq + 1)] : [];
      while (eq < 0 && i + 1 < argv.length && (!argv[i + 1]!.startsWith('-') || isNumberText(argv[i + 1]!))) xs.push(argv[++i]!);
      if (xs.length === 0) throw new ConfigError(`option ${flag} needs one or more values`);
      value = coerce(spec, xs, flag, true);
    } else {
      let text: string | undefined;
      if (eq >= 0) text = a.slice(eq + 1);
      else {
        text = argv[i + 1];
        if (text === undefined || (text.startsWith('-') && text.length > 1 && !isNumberText(text)))
          throw new ConfigError(`option ${flag} needs a value (${typeName(spec.type)})`);
        i++;
      }
      value = coerce(spec, text, flag, true);
    }
    if (spec.infra !== undefined) {
      notes.push(`${flag}${spec.type === 'boolean' ? '' : ` ${Array.isArray(value) ? value.join(' ') : String(value)}`}: ${spec.infra}`);
      continue;
    }
    const dest = spec.aliasOf ?? key;
    if (spec.repeat) values[dest] = [...((values[dest] as unknown[] | undefined) ?? []), value];
    else values[dest] = value;
  }
  return { values, positionals, notes };
}
