import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { checkpoints, createStream, putAll, serviceYaml, suitePeers, waitFor } from './helpers/harness.js';

const BUCKET = 'status-page';
const CHROMIUM = '/usr/bin/chromium';
/** Kept after the run: the screenshot an operator would see (CI keeps it as an artifact). */
const SCREENSHOT = 'test-results/status-page.png';

/** A metric's value for a delivery stream, whatever other labels (destination) it carries. */
const metric = (text: string, name: string, stream: string) => Number(new RegExp(`^${name}\\{delivery_stream="${stream}"[^}]*\\} ([\\d.e+-]+)$`, 'm').exec(text)?.[1]);

describe('the status page, in a real browser', () => {
  const peers = suitePeers([BUCKET]);

  it('shows each shard with its owner and checkpoint, the figures /metrics has, the buffer and the last delivery', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is needed: apt-get install -y chromium (.ci/run installs it)`);
    await createStream(peers.kinesisClient, 'watched', 2);
    const yaml = serviceYaml(peers, [{ deliveryStreamName: 'watched', streamName: 'watched', bucket: BUCKET, sizeInMBs: 1 }]).replace(
      'leaseDurationInSeconds: 2 }',
      'leaseDurationInSeconds: 2, admin: { enabled: true, port: 0 }, deadLetterQueue: { enabled: true } }',
    );
    const service = await startService(parseConfig(yaml), { log: silentLogger });
    const stream = service.streams[0]!;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    try {
      // Records flow: 1.5 MB, so one object is delivered by size and the rest waits in the buffer.
      const records = Array.from({ length: 3_000 }, (_, i) => ({ data: Buffer.from(`watched ${i} ${'y'.repeat(500)}`), partitionKey: `k${i}` }));
      await putAll(peers.kinesisClient, 'watched', records);
      await waitFor(() => stream.stats.recordsRead === 3_000 && stream.stats.objectsDelivered >= 1, 30_000, 'an object delivered and the rest buffered');
      await waitFor(async () => Object.keys(await checkpoints(peers.redisClient, 'watched')).length >= 1, 10_000, 'a checkpoint');

      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const response = await page.goto(`${service.adminUrl}/`);
      expect(response!.status()).toBe(200);
      const metrics = await (await fetch(`${service.adminUrl}/metrics`)).text();
      const card = page.locator('section[data-stream="watched"]');
      const figure = async (name: string) => Number((await card.locator(`[data-figure="${name}"]`).innerText()).replace(/,/g, ''));
      // Nothing moves now (the rest waits in the buffer): the page and /metrics say the same.
      expect(await figure('records-read')).toBe(metric(metrics, 'firehose_data_read_from_kinesis_stream_records_total', 'watched'));
      expect(await figure('records-delivered')).toBe(metric(metrics, 'firehose_delivery_records_total', 'watched'));
      expect(await figure('objects-delivered')).toBe(metric(metrics, 'firehose_delivery_objects_total', 'watched'));
      expect(await figure('error-output')).toBe(0);
      expect(await figure('dlq')).toBe(0);
      expect(await card.locator('[data-figure="data-freshness"]').innerText()).toMatch(/^\d+(\.\d)? s$/);
      expect(metric(metrics, 'firehose_delivery_data_freshness_seconds', 'watched')).toBeGreaterThan(0);

      // Each shard: its owner (this process) and its checkpoint as Redis has it.
      const stored = await checkpoints(peers.redisClient, 'watched');
      const rows = card.locator('tbody tr');
      expect(await rows.count()).toBe(2);
      for (let i = 0; i < 2; i++) {
        const cells = await rows.nth(i).locator('td').allInnerTexts();
        expect(cells[1]).toContain(`${hostname()}:${process.pid}`);
        expect(cells[3]).toBe('open');
        const checkpoint = stored[cells[0]!];
        if (checkpoint) expect(await rows.nth(i).locator('td').nth(4).getAttribute('title')).toBe(checkpoint);
      }
      expect(await card.innerText()).toMatch(/last delivery\s+(just now|\d+ s ago) — s3:\/\/status-page\/watched\//);
      expect(await card.locator('.bar').first().getAttribute('title')).toMatch(/^\d+(\.\d)? (KiB|MiB) of 1\.0 MiB · \d+ records · 1 partition\(s\)$/);
      expect(await card.locator('a[href^="/admin/queues/queue/"]').count()).toBe(1);
      await mkdir('test-results', { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    } finally {
      await browser.close();
      await service.stop();
    }
  });
});
