/**
 * How many CPUs this process can keep busy: the default thread count.
 *
 * os.availableParallelism() counts the CPUs the affinity mask allows; a
 * container's CPU limit (`docker --cpus`, a Kubernetes CPU limit) is a cgroup
 * quota it does not see under Node 20 (libuv applies quotas from 1.49, which
 * Node 22 ships). Uncapped, a container limited to 2 CPUs on a 64-core host
 * would start 63 workers that spin between kernels on 2 CPUs' worth of time.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { posix } from 'node:path';

/** availableParallelism() capped by the cgroup CPU quota, at least 1. `root` prefixes every path read (tests). */
export function availableCpus(root = ''): number {
  return Math.max(1, Math.min(availableParallelism(), cgroupCpuQuota(root)));
}

interface Mount {
  root: string;
  point: string;
  type: string;
  options: string[];
}

/** A line of /proc/self/mountinfo: "id parent dev root point opts [tags] - type source superopts". */
function parseMount(line: string): Mount | null {
  const f = line.split(' ');
  const dash = f.indexOf('-', 6);
  if (dash < 0 || f.length < dash + 4) return null;
  return { root: f[3], point: f[4], type: f[dash + 1], options: f[dash + 3].split(',') };
}

/**
 * The CPU quota, in whole CPUs (a fraction rounds down, to at least 1), of
 * this process's cgroup and its ancestors up to the hierarchy's mount: the
 * smallest one set. Infinity when none is set or nothing can be read.
 *   - cgroup v2: the line "0::<path>" of /proc/self/cgroup; cpu.max holds
 *     "<quota> <period>" or "max <period>".
 *   - cgroup v1: the hierarchy whose controllers include cpu;
 *     cpu.cfs_quota_us (-1: none) over cpu.cfs_period_us.
 */
export function cgroupCpuQuota(root = ''): number {
  const read = (path: string): string | null => {
    try {
      return readFileSync(root + path, 'utf8');
    } catch {
      return null;
    }
  };
  const groups = read('/proc/self/cgroup')?.split('\n') ?? [];
  const mounts = (read('/proc/self/mountinfo')?.split('\n') ?? []).map(parseMount).filter((m): m is Mount => m !== null);
  const ratio = (quota: number, period: number): number =>
    quota > 0 && period > 0 ? Math.max(1, Math.floor(quota / period)) : Infinity;
  let cpus = Infinity;

  const v2 = groups.find((l) => l.startsWith('0::'));
  const m2 = mounts.find((m) => m.type === 'cgroup2');
  if (v2 !== undefined && m2 !== undefined) {
    cpus = Math.min(cpus, smallestUp(m2, v2.slice(3), (dir) => {
      const [quota, period] = (read(`${dir}/cpu.max`) ?? 'max').trim().split(/\s+/);
      return quota === 'max' ? Infinity : ratio(Number(quota), Number(period));
    }));
  }

  const hasCpu = (controllers: string[]) => controllers.includes('cpu');
  const v1 = groups.map((l) => l.split(':')).find((f) => f.length >= 3 && hasCpu(f[1].split(',')));
  const m1 = mounts.find((m) => m.type === 'cgroup' && hasCpu(m.options));
  if (v1 !== undefined && m1 !== undefined) {
    cpus = Math.min(cpus, smallestUp(m1, v1.slice(2).join(':'), (dir) =>
      ratio(Number(read(`${dir}/cpu.cfs_quota_us`) ?? -1), Number(read(`${dir}/cpu.cfs_period_us`) ?? 0))));
  }
  return cpus;
}

/** The smallest of `quota(dir)` over the cgroup directory of `path` in mount `m` and its parents up to the mount point. */
function smallestUp(m: Mount, path: string, quota: (dir: string) => number): number {
  // The path is relative to the hierarchy's root; the mount shows that hierarchy from m.root down.
  const under = (p: string, top: string) => top === '/' || p === top || p.startsWith(`${top}/`);
  let dir = posix.join(m.point, under(path, m.root) ? path.slice(m.root === '/' ? 0 : m.root.length) : '/');
  if (!under(dir, m.point)) dir = m.point;
  let smallest = Infinity;
  for (;;) {
    smallest = Math.min(smallest, quota(dir));
    if (dir === m.point || dir === '/') return smallest;
    dir = posix.dirname(dir);
  }
}
