/** Helpers shared by the CLI commands: option parsing, child processes, formatting. */
import { HeaplabError } from '../errors.js';
import { type AllocatorKind, type AllocatorName, allocatorKinds, allocatorNames, isAllocatorKind, isAllocatorName } from '../kinds.js';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A usage error: the command prints it with its usage and exits with 2. */
export class UsageError extends HeaplabError {
  constructor(message: string) {
    super('ERR_HEAPLAB_USAGE', message);
  }
}

/**
 * Splits `[options] -- COMMAND ARGS...`. Without `--`, options end at the first
 * argument that does not start with `-` (and is not the value of an option that
 * takes one, listed in `valued`).
 */
export function splitCommand(argv: string[], valued: readonly string[] = []): { options: string[]; command: string[] } {
  const dashdash = argv.indexOf('--');
  if (dashdash >= 0) return { options: argv.slice(0, dashdash), command: argv.slice(dashdash + 1) };
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) break;
    i += valued.includes(arg) ? 2 : 1;
  }
  return { options: argv.slice(0, i), command: argv.slice(i) };
}

/** util.parseArgs, strict: the one parser of every command. Its errors become UsageErrors in heaplab's words. */
export function parseOptions<const T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ strict: true, ...config });
  } catch (error) {
    throw new UsageError(parseErrorText(error as Error & { code?: string }));
  }
}

/** Node's parseArgs messages, said once, the same way, for every command. */
function parseErrorText(error: Error & { code?: string }): string {
  const m = error.message;
  const name = (re: RegExp): string | undefined => re.exec(m)?.[1];
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${name(/'([^']+)'/) ?? ''}`.trim();
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${JSON.stringify(name(/'([^']*)'/) ?? '')}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const option = name(/(--[\w-]+)/) ?? 'an option';
      return m.includes('does not take an argument') ? `${option} takes no value` : `${option} needs a value`;
    }
    default:
      return m;
  }
}

/** A comma-separated option (`--allocator a,b`) as its names; undefined when the option is absent. */
export const commaList = (v: string | undefined): string[] | undefined => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

/** A malloc-compatible shared library given as `--peer NAME=PATH` (bench, churn). */
export interface PeerLibrary {
  name: string;
  /** Absolute. */
  path: string;
}

/**
 * The `--peer NAME=PATH` values of a command, checked: NAME up to 31 letters,
 * digits, `_ . + -`, not one of `reserved` (the allocators the command knows)
 * nor given twice, and a file at PATH. Throws a UsageError saying what is wrong.
 */
export function peerLibraries(specs: readonly string[], reserved: readonly string[]): PeerLibrary[] {
  const libraries: PeerLibrary[] = [];
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const name = eq > 0 ? spec.slice(0, eq) : '';
    const path = eq > 0 ? spec.slice(eq + 1) : '';
    if (!/^[A-Za-z0-9_.+-]{1,31}$/.test(name) || !path) {
      throw new UsageError(`--peer wants NAME=PATH (NAME: up to 31 letters, digits, _ . + -); received ${JSON.stringify(spec)}`);
    }
    if (reserved.includes(name) || libraries.some((l) => l.name === name)) {
      throw new UsageError(`--peer ${name}: that name is taken (${[...reserved, ...libraries.map((l) => l.name)].join(', ')})`);
    }
    if (!existsSync(path)) throw new UsageError(`--peer ${name}: no file at ${path}`);
    libraries.push({ name, path: resolve(path) });
  }
  return libraries;
}

/** `name` as a design (compare), or the one usage error every command gives for a wrong one. */
export function allocatorArgument(name: string): AllocatorKind {
  if (!isAllocatorKind(name)) {
    throw new UsageError(`unknown allocator ${JSON.stringify(name)} (expected one of ${allocatorKinds.join(', ')})`);
  }
  return name;
}

/** `name` as a design or NAME+cache (run, trace, which, sanity), or the same usage error. */
export function allocatorNameArgument(name: string): AllocatorName {
  if (!isAllocatorName(name)) {
    throw new UsageError(`unknown allocator ${JSON.stringify(name)} (expected one of ${allocatorNames.join(', ')})`);
  }
  return name;
}

/**
 * The one way every command reports a usage error: one line on stderr, exit 2.
 * (`usage` is kept for the callers; the line points at --help, which shows it.)
 */
export function usageFailure(command: string, _usage: string, message: string): number {
  process.stderr.write(`heaplab ${command}: ${message} (see heaplab ${command} --help)\n`);
  return 2;
}

/** The shell's convention: the exit code, or 128 + the signal's number. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal) return 128 + (constants.signals[signal] ?? 0);
  return 1;
}

/**
 * Runs a program with the terminal (stdio inherited) and returns its exit code
 * (128 + n for a signal). The program shares heaplab's process group, so a
 * Ctrl-C (SIGINT, SIGQUIT) from the terminal reaches it directly and heaplab only
 * waits; SIGTERM and SIGHUP sent to heaplab alone are passed on to it.
 */
export function runInherited(command: string[], env: NodeJS.ProcessEnv, options: { stdoutToStderr?: boolean } = {}): Promise<number> {
  return new Promise((resolve) => {
    // stdoutToStderr: the program's output goes to stderr, leaving stdout to heaplab's JSON
    const stdio: Array<'inherit' | number> = options.stdoutToStderr ? ['inherit', 2, 'inherit'] : ['inherit', 'inherit', 'inherit'];
    const child = spawn(command[0]!, command.slice(1), { stdio, env });
    const forwarded: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];
    const waited: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT'];
    const forward = (signal: NodeJS.Signals) => {
      child.kill(signal);
    };
    const ignore = () => {};
    for (const s of forwarded) process.on(s, forward);
    for (const s of waited) process.on(s, ignore);
    const done = (code: number) => {
      for (const s of forwarded) process.off(s, forward);
      for (const s of waited) process.off(s, ignore);
      resolve(code);
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      process.stderr.write(`heaplab: cannot run ${command[0]}: ${error.message}\n`);
      done(error.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, signal) => done(exitCodeOf(code, signal)));
  });
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}
