/**
 * Launcher detection: which launcher started this process and where its job's rank 0 is, read from
 * the environment the launcher set. Checked in this order (the first that applies wins):
 *
 * 1. **torchrun** (and `mega train --workers N`, which sets the same variables): `RANK`,
 *    `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`, `TORCHELASTIC_*`.
 *    With `TORCHELASTIC_USE_AGENT_STORE=True` torchrun's agent already listens on `MASTER_PORT`
 *    (its c10d TCPStore), so our rendezvous uses `MEGA_DIST_PORT` or, by default, `MASTER_PORT + 1`.
 * 2. **Slurm** (`srun`): `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`, the tasks per node, and the
 *    step's node list, whose first host is the master address (unless `MASTER_ADDR` is set). The port
 *    is `MASTER_PORT` or derived from `SLURM_JOB_ID` (10000 + id mod 20000), the same on every node.
 * 3. **Open MPI** (`mpirun`): `OMPI_COMM_WORLD_RANK`, `_SIZE`, `_LOCAL_RANK`, `_LOCAL_SIZE`.
 * 4. **PMI** (MPICH / Intel MPI hydra): `PMI_RANK`, `PMI_SIZE` (local rank from `MPI_LOCALRANKID`).
 * 5. otherwise a single process.
 *
 * For MPI/PMI launches the master address is `MASTER_ADDR`, or 127.0.0.1 when every rank runs on
 * this host; a multi-host MPI job on the tcp backend needs `MASTER_ADDR` (the mpi backend needs
 * none). Everything is normalised to one {@link DistEnv}.
 */
import { DistConfigError } from './errors.js';

/** Which launcher started the process. `workers` = `mega train --workers N` (torchrun's variables). */
export type LauncherName = 'torchrun' | 'workers' | 'slurm' | 'openmpi' | 'pmi' | 'single';

/** The normalised view of a launched job. */
export interface DistEnv {
  /** Launcher that set the variables. */
  launcher: LauncherName;
  /** Global rank, 0 … worldSize − 1. */
  rank: number;
  /** Number of processes in the job. */
  worldSize: number;
  /** Rank among the processes of this host. */
  localRank: number;
  /** Number of processes on this host. */
  localWorldSize: number;
  /** Host of rank 0 (where the rendezvous listens); '' when unknown (an MPI job without MASTER_ADDR). */
  masterAddr: string;
  /** The launcher's master port (`MASTER_PORT`). */
  masterPort: number;
  /** Port our tcp rendezvous uses: `masterPort`, or another one when the launcher's agent holds it. */
  rendezvousPort: number;
  /** torchrun's elastic agent holds `MASTER_PORT` (`TORCHELASTIC_USE_AGENT_STORE=True`): never bind it. */
  agentStore: boolean;
  /** How many times the launcher restarted the job (`TORCHELASTIC_RESTART_COUNT`, `MEGA_RESTART_COUNT`). */
  restartCount: number;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Default port when no launcher names one (torchrun's default). */
export const DEFAULT_MASTER_PORT = 29500;

function int(env: Env, name: string, min: number, fallback?: number): number {
  const s = env[name];
  if (s === undefined || s === '') {
    if (fallback !== undefined) return fallback;
    throw new DistConfigError(`environment variable ${name} is not set (needed by the launcher's variables found)`);
  }
  const v = Number(s.trim());
  if (!Number.isInteger(v) || v < min) throw new DistConfigError(`${name}=${JSON.stringify(s)}: expected an integer >= ${min}`);
  return v;
}

function port(env: Env, name: string, fallback: number): number {
  const v = int(env, name, 1, fallback);
  if (v > 65535) throw new DistConfigError(`${name}=${v}: expected a TCP port (1 … 65535)`);
  return v;
}

function has(env: Env, ...names: string[]): boolean {
  return names.every((n) => env[n] !== undefined && env[n] !== '');
}

/**
 * Expand a Slurm host list (`node[01-03,07],gpu5,rack[1-2]-n[1-2]` → node01, node02, …).
 * Brackets hold comma-separated numbers or ranges; zero padding follows the range's first bound.
 * @throws DistConfigError for unbalanced brackets or a malformed range
 */
export function expandHostlist(list: string): string[] {
  // split at top-level commas
  const parts: string[] = [];
  let depth = 0,
    cur = '';
  for (const ch of list.trim()) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (depth < 0) throw new DistConfigError(`Slurm node list ${JSON.stringify(list)}: unbalanced ']'`);
    if (ch === ',' && depth === 0) {
      if (cur) parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new DistConfigError(`Slurm node list ${JSON.stringify(list)}: unbalanced '['`);
  if (cur) parts.push(cur);
  const out: string[] = [];
  for (const p of parts) out.push(...expandOne(p, list));
  return out;
}

function expandOne(p: string, whole: string): string[] {
  const open = p.indexOf('[');
  if (open < 0) return [p];
  const close = p.indexOf(']', open);
  const head = p.slice(0, open),
    body = p.slice(open + 1, close),
    tail = p.slice(close + 1);
  const items: string[] = [];
  for (const r of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(r.trim());
    if (!m) throw new DistConfigError(`Slurm node list ${JSON.stringify(whole)}: malformed range ${JSON.stringify(r)}`);
    const lo = Number(m[1]),
      hi = m[2] !== undefined ? Number(m[2]) : lo,
      width = m[1].length;
    if (hi < lo) throw new DistConfigError(`Slurm node list ${JSON.stringify(whole)}: range ${r} runs backwards`);
    for (let i = lo; i <= hi; i++) items.push(String(i).padStart(width, '0'));
  }
  const rest = expandOne(tail, whole);
  const out: string[] = [];
  for (const i of items) for (const t of rest) out.push(`${head}${i}${t}`);
  return out;
}

/**
 * Tasks on node `nodeId` from Slurm's compressed per-node counts (`2(x3),1` = 2, 2, 2, 1).
 * @returns undefined when the string does not cover that node
 */
export function slurmTasksOnNode(spec: string, nodeId: number): number | undefined {
  let node = 0;
  for (const item of spec.split(',')) {
    const m = /^\s*(\d+)(?:\(x(\d+)\))?\s*$/.exec(item);
    if (!m) return undefined;
    const n = Number(m[1]),
      rep = m[2] !== undefined ? Number(m[2]) : 1;
    if (nodeId < node + rep) return n;
    node += rep;
  }
  return undefined;
}

/** The rendezvous port: `MEGA_DIST_PORT`, else the master port unless torchrun's agent holds it. */
function rendezvousPort(env: Env, masterPort: number, agentStore: boolean): number {
  if (has(env, 'MEGA_DIST_PORT')) return port(env, 'MEGA_DIST_PORT', 0);
  if (!agentStore) return masterPort;
  if (masterPort >= 65535)
    throw new DistConfigError(`MASTER_PORT=${masterPort} is held by torchrun's agent ` + `and ${masterPort}+1 is no port; set MEGA_DIST_PORT`);
  return masterPort + 1;
}

function check(e: DistEnv, what: string): DistEnv {
  if (e.worldSize < 1) throw new DistConfigError(`${what}: world size ${e.worldSize} (expected >= 1)`);
  if (e.rank >= e.worldSize) throw new DistConfigError(`${what}: rank ${e.rank} is not below the world size ${e.worldSize}`);
  if (e.localWorldSize < 1 || e.localRank >= e.localWorldSize) {
    throw new DistConfigError(`${what}: local rank ${e.localRank} is not below the local world size ${e.localWorldSize}`);
  }
  if (e.localWorldSize > e.worldSize) throw new DistConfigError(`${what}: local world size ${e.localWorldSize} exceeds the world size ${e.worldSize}`);
  return e;
}

/**
 * Detect the launcher from `env` (default `process.env`) and normalise its variables.
 * @throws DistConfigError for malformed or inconsistent variables
 */
export function detectLauncher(env: Env = process.env): DistEnv {
  // 1. torchrun (also `mega train --workers`, which sets the same variables)
  if (has(env, 'RANK', 'WORLD_SIZE')) {
    const worldSize = int(env, 'WORLD_SIZE', 1);
    const rank = int(env, 'RANK', 0);
    const agentStore = (env.TORCHELASTIC_USE_AGENT_STORE ?? '').toLowerCase() === 'true';
    if (worldSize > 1 && !has(env, 'MASTER_ADDR', 'MASTER_PORT')) {
      throw new DistConfigError('RANK and WORLD_SIZE are set but MASTER_ADDR / MASTER_PORT are not (torchrun sets all four)');
    }
    const masterPort = port(env, 'MASTER_PORT', DEFAULT_MASTER_PORT);
    return check(
      {
        launcher: env.MEGA_LAUNCHER === 'workers' ? 'workers' : 'torchrun',
        rank,
        worldSize,
        localRank: int(env, 'LOCAL_RANK', 0, rank),
        localWorldSize: int(env, 'LOCAL_WORLD_SIZE', 1, worldSize),
        masterAddr: env.MASTER_ADDR || '127.0.0.1',
        masterPort,
        rendezvousPort: rendezvousPort(env, masterPort, agentStore),
        agentStore,
        restartCount: int(env, 'TORCHELASTIC_RESTART_COUNT', 0, int(env, 'MEGA_RESTART_COUNT', 0, 0)),
      },
      'torchrun variables',
    );
  }
  // 2. Slurm
  if (has(env, 'SLURM_PROCID') && (has(env, 'SLURM_NTASKS') || has(env, 'SLURM_NPROCS'))) {
    const worldSize = has(env, 'SLURM_NTASKS') ? int(env, 'SLURM_NTASKS', 1) : int(env, 'SLURM_NPROCS', 1);
    const rank = int(env, 'SLURM_PROCID', 0);
    const nodeId = int(env, 'SLURM_NODEID', 0, 0);
    const perNode = env.SLURM_STEP_TASKS_PER_NODE ?? env.SLURM_TASKS_PER_NODE;
    const local = perNode !== undefined ? slurmTasksOnNode(perNode, nodeId) : undefined;
    const list = env.SLURM_STEP_NODELIST ?? env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST;
    let masterAddr = env.MASTER_ADDR ?? '';
    if (!masterAddr) {
      if (list) masterAddr = expandHostlist(list)[0] ?? '';
      if (!masterAddr) masterAddr = worldSize === (local ?? 1) ? '127.0.0.1' : '';
      if (!masterAddr) throw new DistConfigError('Slurm: no node list (SLURM_STEP_NODELIST / SLURM_JOB_NODELIST) and no MASTER_ADDR to find rank 0');
    }
    const job = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
    const derived = job !== undefined && /^\d+$/.test(job) ? 10000 + (Number(job) % 20000) : DEFAULT_MASTER_PORT;
    const masterPort = port(env, 'MASTER_PORT', derived);
    return check(
      {
        launcher: 'slurm',
        rank,
        worldSize,
        localRank: int(env, 'SLURM_LOCALID', 0, 0),
        localWorldSize: local ?? int(env, 'SLURM_NTASKS_PER_NODE', 1, 1),
        masterAddr,
        masterPort,
        rendezvousPort: rendezvousPort(env, masterPort, false),
        agentStore: false,
        restartCount: int(env, 'SLURM_RESTART_COUNT', 0, 0),
      },
      'Slurm variables',
    );
  }
  // 3. Open MPI
  if (has(env, 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE')) {
    const worldSize = int(env, 'OMPI_COMM_WORLD_SIZE', 1);
    const localWorldSize = int(env, 'OMPI_COMM_WORLD_LOCAL_SIZE', 1, worldSize);
    const masterPort = port(env, 'MASTER_PORT', DEFAULT_MASTER_PORT);
    return check(
      {
        launcher: 'openmpi',
        rank: int(env, 'OMPI_COMM_WORLD_RANK', 0),
        worldSize,
        localRank: int(env, 'OMPI_COMM_WORLD_LOCAL_RANK', 0, 0),
        localWorldSize,
        masterAddr: env.MASTER_ADDR || (localWorldSize === worldSize ? '127.0.0.1' : ''),
        masterPort,
        rendezvousPort: rendezvousPort(env, masterPort, false),
        agentStore: false,
        restartCount: 0,
      },
      'Open MPI variables',
    );
  }
  // 4. PMI (MPICH / Intel MPI)
  if (has(env, 'PMI_RANK', 'PMI_SIZE')) {
    const worldSize = int(env, 'PMI_SIZE', 1);
    const localWorldSize = int(env, 'MPI_LOCALNRANKS', 1, int(env, 'PMI_LOCAL_SIZE', 1, worldSize));
    const rank = int(env, 'PMI_RANK', 0);
    const masterPort = port(env, 'MASTER_PORT', DEFAULT_MASTER_PORT);
    return check(
      {
        launcher: 'pmi',
        rank,
        worldSize,
        localRank: int(env, 'MPI_LOCALRANKID', 0, int(env, 'PMI_LOCAL_RANK', 0, localWorldSize === worldSize ? rank : 0)),
        localWorldSize,
        masterAddr: env.MASTER_ADDR || (localWorldSize === worldSize ? '127.0.0.1' : ''),
        masterPort,
        rendezvousPort: rendezvousPort(env, masterPort, false),
        agentStore: false,
        restartCount: 0,
      },
      'PMI variables',
    );
  }
  return {
    launcher: 'single',
    rank: 0,
    worldSize: 1,
    localRank: 0,
    localWorldSize: 1,
    masterAddr: '127.0.0.1',
    masterPort: DEFAULT_MASTER_PORT,
    rendezvousPort: DEFAULT_MASTER_PORT,
    agentStore: false,
    restartCount: 0,
  };
}
