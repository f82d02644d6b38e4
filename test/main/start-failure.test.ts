import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startService } from '../../src/main.js';
import { freePort } from '../helpers/free-port.js';

describe('start-up failure', () => {
  it('a start that fails after binding releases the port (the process can exit)', async () => {
    const port = await freePort();
    const config = loadConfig({ VOLMO_SANDBOX: 'false', VOLMO_PORT: String(port), VOLMO_SERVICE_KEY_FILE: '/nonexistent/volmo-key.pem' });
    await expect(startService(config, silentLogger())).rejects.toThrow(/service key file could not be read/);
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((r) => again.close(() => r()));
  });
});
