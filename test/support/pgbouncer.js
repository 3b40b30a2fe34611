// A real PgBouncer in transaction mode in front of the test PostgreSQL (TEST_PGBOUNCER=1): the set-up Neon's
// pooled URL gives. Plain JavaScript: it runs in jest's parent process, from global-setup.js.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import net from 'node:net';

export async function startPgBouncer({ dir, target, port, user }) {
  if (spawnSync('pgbouncer', ['--version']).status !== 0) {
    throw new Error('TEST_PGBOUNCER=1 needs pgbouncer on the PATH (apt-get install pgbouncer)');
  }
  mkdirSync(dir, { recursive: true });
  const url = new URL(target);
  const password = decodeURIComponent(url.password);
  writeFileSync(join(dir, 'userlist.txt'), `"${decodeURIComponent(url.username)}" "${password}"\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${url.hostname} port=${url.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      'max_client_conn = 2000',
      'default_pool_size = 40',
      'ignore_startup_parameters = extra_float_digits',
      `admin_users = ${decodeURIComponent(url.username)}`,
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  if (user.uid !== undefined) {
    for (const file of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, file), user.uid, user.gid);
  }
  const child = spawn('pgbouncer', [join(dir, 'pgbouncer.ini')], { ...user, stdio: 'ignore', detached: false });
  for (let i = 0; i < 100; i++) {
    if (await canConnect(port)) return { stop: () => child.kill('SIGINT') };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(`pgbouncer did not start; see ${join(dir, 'pgbouncer.log')}`);
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
