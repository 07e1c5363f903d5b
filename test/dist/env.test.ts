import { describe, expect, it } from 'vitest';
import { detectLauncher, expandHostlist, slurmTasksOnNode } from '../../src/dist/env.js';
import { workerArgv } from '../../src/dist/launch.js';
import { isMainProcess, launchedWorldSize } from '../../src/dist/training.js';
import { isUserError } from '../../src/errors.js';

describe('launcher detection', () => {
  it('torchrun variables, in the order torchrun sets them', () => {
    const e = detectLauncher({
      RANK: '3',
      WORLD_SIZE: '8',
      LOCAL_RANK: '1',
      LOCAL_WORLD_SIZE: '2',
      GROUP_RANK: '1',
      MASTER_ADDR: 'node0',
      MASTER_PORT: '29400',
      TORCHELASTIC_RESTART_COUNT: '2',
      TORCHELASTIC_MAX_RESTARTS: '3',
      TORCHELASTIC_RUN_ID: 'abc',
      TORCHELASTIC_USE_AGENT_STORE: 'False',
    });
    expect(e).toEqual({
      launcher: 'torchrun',
      rank: 3,
      worldSize: 8,
      localRank: 1,
      localWorldSize: 2,
      masterAddr: 'node0',
      masterPort: 29400,
      rendezvousPort: 29400,
      agentStore: false,
      restartCount: 2,
    });
  });

  it('TORCHELASTIC_USE_AGENT_STORE=True: the agent holds MASTER_PORT, so the rendezvous uses the next port (or MEGA_DIST_PORT)', () => {
    const base = {
      RANK: '0',
      WORLD_SIZE: '2',
      LOCAL_RANK: '0',
      LOCAL_WORLD_SIZE: '2',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: '29500',
      TORCHELASTIC_USE_AGENT_STORE: 'True',
    };
    expect(detectLauncher(base)).toMatchObject({ agentStore: true, masterPort: 29500, rendezvousPort: 29501 });
    expect(detectLauncher({ ...base, MEGA_DIST_PORT: '40000' })).toMatchObject({ rendezvousPort: 40000 });
  });

  it('mega train --workers sets the torchrun variables (launcher "workers")', () => {
    const e = detectLauncher({
      RANK: '1',
      WORLD_SIZE: '2',
      LOCAL_RANK: '1',
      LOCAL_WORLD_SIZE: '2',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: '1234',
      MEGA_LAUNCHER: 'workers',
      MEGA_RESTART_COUNT: '1',
    });
    expect(e).toMatchObject({ launcher: 'workers', rank: 1, worldSize: 2, restartCount: 1 });
  });

  it('Slurm: ranks from SLURM_*, master = first host of the step node list, port from the job id', () => {
    const e = detectLauncher({
      SLURM_PROCID: '5',
      SLURM_NTASKS: '6',
      SLURM_LOCALID: '1',
      SLURM_NODEID: '2',
      SLURM_STEP_TASKS_PER_NODE: '2(x3)',
      SLURM_STEP_NODELIST: 'gpu[07-09]',
      SLURM_JOB_NODELIST: 'gpu[01-20]',
      SLURM_JOB_ID: '123456',
    });
    expect(e).toEqual({
      launcher: 'slurm',
      rank: 5,
      worldSize: 6,
      localRank: 1,
      localWorldSize: 2,
      masterAddr: 'gpu07',
      masterPort: 10000 + (123456 % 20000),
      rendezvousPort: 10000 + (123456 % 20000),
      agentStore: false,
      restartCount: 0,
    });
    expect(detectLauncher({ SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_JOB_NODELIST: 'a,b', MASTER_ADDR: 'x', MASTER_PORT: '7' })).toMatchObject({
      masterAddr: 'x',
      masterPort: 7,
    });
  });

  it('Open MPI and PMI variables', () => {
    expect(
      detectLauncher({ OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '2' }),
    ).toMatchObject({ launcher: 'openmpi', rank: 1, worldSize: 2, localRank: 1, localWorldSize: 2, masterAddr: '127.0.0.1', masterPort: 29500 });
    // across hosts the tcp backend needs MASTER_ADDR: left empty, reported when the group starts
    const ompi = { OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '2' };
    expect(detectLauncher(ompi).masterAddr).toBe('');
    expect(detectLauncher({ PMI_RANK: '2', PMI_SIZE: '4', MPI_LOCALRANKID: '0', MPI_LOCALNRANKS: '2', MASTER_ADDR: 'h0' })).toMatchObject({
      launcher: 'pmi',
      rank: 2,
      worldSize: 4,
      localRank: 0,
      localWorldSize: 2,
      masterAddr: 'h0',
    });
  });

  it('the first launcher found wins (torchrun before Slurm before Open MPI before PMI)', () => {
    const env = {
      RANK: '0',
      WORLD_SIZE: '1',
      SLURM_PROCID: '1',
      SLURM_NTASKS: '2',
      OMPI_COMM_WORLD_RANK: '1',
      OMPI_COMM_WORLD_SIZE: '2',
      PMI_RANK: '1',
      PMI_SIZE: '2',
    };
    expect(detectLauncher(env).launcher).toBe('torchrun');
    const { RANK: _r, WORLD_SIZE: _w, ...noTorch } = env;
    expect(detectLauncher({ ...noTorch, SLURM_JOB_NODELIST: 'n1' }).launcher).toBe('slurm');
    const { SLURM_PROCID: _p, SLURM_NTASKS: _n, ...noSlurm } = noTorch;
    expect(detectLauncher(noSlurm).launcher).toBe('openmpi');
    expect(detectLauncher({ PMI_RANK: '0', PMI_SIZE: '1' }).launcher).toBe('pmi');
    expect(detectLauncher({})).toMatchObject({ launcher: 'single', rank: 0, worldSize: 1 });
  });

  it('rejects malformed or inconsistent variables with one clear line', () => {
    expect(() => detectLauncher({ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' })).toThrow(/rank 2 is not below the world size 2/);
    expect(() => detectLauncher({ RANK: 'x', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' })).toThrow(/RANK="x": expected an integer/);
    expect(() => detectLauncher({ RANK: '0', WORLD_SIZE: '2' })).toThrow(/MASTER_ADDR \/ MASTER_PORT are not/);
    expect(() => detectLauncher({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '70000' })).toThrow(/MASTER_PORT=70000: expected a TCP port/);
    expect(() => detectLauncher({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' })).not.toThrow();
    try {
      detectLauncher({ RANK: '5', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' });
    } catch (e) {
      expect(isUserError(e)).toBe(true); // exit code 2 in the CLI
    }
  });

  it('isMainProcess / launchedWorldSize', () => {
    expect(isMainProcess({})).toBe(true);
    expect(isMainProcess({ RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' })).toBe(false);
    expect(launchedWorldSize({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '4' })).toBe(4);
    expect(launchedWorldSize({})).toBe(1);
  });
});

describe('Slurm host lists', () => {
  it('expands ranges, lists, zero padding and several bracket groups', () => {
    expect(expandHostlist('node[01-03,07],gpu5')).toEqual(['node01', 'node02', 'node03', 'node07', 'gpu5']);
    expect(expandHostlist('r[1-2]-n[8-9]')).toEqual(['r1-n8', 'r1-n9', 'r2-n8', 'r2-n9']);
    expect(expandHostlist('single')).toEqual(['single']);
    expect(() => expandHostlist('a[1-')).toThrow(/unbalanced/);
    expect(() => expandHostlist('a[3-1]')).toThrow(/backwards/);
  });
  it('reads the compressed tasks-per-node counts', () => {
    expect([0, 1, 2, 3].map((i) => slurmTasksOnNode('2(x3),1', i))).toEqual([2, 2, 2, 1]);
    expect(slurmTasksOnNode('4', 1)).toBeUndefined();
  });
});

describe("mega train --workers: the workers' command line", () => {
  it('drops --workers / --max-restarts; a restart resumes (adds --resume, drops --overwrite)', () => {
    const argv = ['--workers', '2', '--max-restarts=3', '--lr', '0.1', '--overwrite', '--save-dir', 'x'];
    expect(workerArgv(argv, false)).toEqual(['--lr', '0.1', '--overwrite', '--save-dir', 'x']);
    expect(workerArgv(argv, true)).toEqual(['--lr', '0.1', '--save-dir', 'x', '--resume']);
    expect(workerArgv(['--resume', '--maxRestarts', '1'], true)).toEqual(['--resume']);
  });
});
