import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join, dirname } from 'node:path';
import { availableCpus, cgroupCpuQuota } from '../../src/tensor/cpus.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A fake filesystem root holding `files` (path -> contents). */
function fixture(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'convrnn-cpus-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const v2Mount = '30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n';

describe('CPUs for the default thread count', () => {
  it('reads a cgroup v2 quota, rounding a fraction down to at least one CPU', () => {
    const at = (max: string) => fixture({ '/proc/self/cgroup': '0::/\n', '/proc/self/mountinfo': v2Mount, '/sys/fs/cgroup/cpu.max': `${max}\n` });
    expect(cgroupCpuQuota(at('250000 100000'))).toBe(2);
    expect(cgroupCpuQuota(at('400000 100000'))).toBe(4);
    expect(cgroupCpuQuota(at('50000 100000'))).toBe(1);
    expect(cgroupCpuQuota(at('max 100000'))).toBe(Infinity);
    expect(availableCpus(at('50000 100000'))).toBe(1);
    expect(availableCpus(at('max 100000'))).toBe(availableParallelism());
  });

  it('takes the smallest quota of the cgroup and its ancestors', () => {
    const root = fixture({
      '/proc/self/cgroup': '0::/kubepods/pod7/c1\n',
      '/proc/self/mountinfo': v2Mount,
      '/sys/fs/cgroup/kubepods/pod7/c1/cpu.max': 'max 100000',
      '/sys/fs/cgroup/kubepods/pod7/cpu.max': '300000 100000',
      '/sys/fs/cgroup/kubepods/cpu.max': '1600000 100000',
    });
    expect(cgroupCpuQuota(root)).toBe(3);
  });

  it('reads a cgroup v1 cpu hierarchy mounted from the container cgroup, beside other controllers', () => {
    const mountinfo =
      '31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n' +
      '35 31 0:32 /docker/ab /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n' +
      '32 31 0:29 /docker/ab /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n';
    const at = (quota: string) => fixture({
      '/proc/self/cgroup': '5:memory:/docker/ab\n3:cpu,cpuacct:/docker/ab\n0::/\n',
      '/proc/self/mountinfo': mountinfo,
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': quota,
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    });
    expect(cgroupCpuQuota(at('600000\n'))).toBe(6);
    expect(cgroupCpuQuota(at('-1\n'))).toBe(Infinity);
  });

  it('a prefix of a cgroup name is not its ancestor', () => {
    const root = fixture({
      '/proc/self/cgroup': '1:cpu:/docker/abc\n',
      '/proc/self/mountinfo': '32 31 0:29 /docker/ab /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '200000',
      '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
      '/sys/fs/cgroup/cpu/c/cpu.cfs_quota_us': '100000',
      '/sys/fs/cgroup/cpu/c/cpu.cfs_period_us': '100000',
    });
    expect(cgroupCpuQuota(root)).toBe(2); // not the quota of ".../c", a path cut from "/docker/abc" at "/docker/ab"
  });

  it('no cgroup files, or unreadable ones, set no limit', () => {
    expect(cgroupCpuQuota(fixture({}))).toBe(Infinity);
    expect(cgroupCpuQuota(fixture({ '/proc/self/cgroup': 'garbage', '/proc/self/mountinfo': 'also garbage\n\n' }))).toBe(Infinity);
    const noFile = fixture({ '/proc/self/cgroup': '0::/a\n', '/proc/self/mountinfo': v2Mount });
    expect(cgroupCpuQuota(noFile)).toBe(Infinity);
  });

  it('on this machine: between 1 and the CPUs the affinity mask allows', () => {
    const n = availableCpus();
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(availableParallelism());
  });
});
