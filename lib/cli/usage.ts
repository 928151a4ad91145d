/**
 * The usage line of every command (after `heaplab `), in one place: each command
 * prints its own in --help, and `heaplab --help` lists them all without loading
 * any command (so one command's dependencies never stop another from starting).
 */
export const usageLines = {
  compare: 'compare [--allocator NAME]... [--trace NAME]... [--scale N] [--shared] [--list] [--no-thing] [--json]',
  run: 'run [--allocator NAME] -- COMMAND [ARGS...]',
  which: 'which [NAME] [--json]',
  sanity: 'sanity [--quick] [--allocator a,b] [--program p,q] [--keep] [--timeout SECONDS] [--json]',
  trace: 'trace [--allocator NAME] [--out FILE] [--json] -- COMMAND [ARGS...]',
  map: 'map [--trace NAME|FILE] [--allocator a,b] [--at N] [--out FILE] [--json]',
  bench: 'bench [--quick] [--out FILE] [--json FILE] [--allocator a,b] [--workload w,x] [--peer NAME=PATH.so]... [--no-record] [--no-ports] [--no-napi] [--scale N]',
  churn: 'churn [--allocator a,b] [--peer NAME=PATH.so]... [--rounds N] [--pairs N] [--live N] [--min BYTES] [--max BYTES] [--threads N] [--seed N] [--fill] [--out FILE] [--json FILE]',
} as const;
