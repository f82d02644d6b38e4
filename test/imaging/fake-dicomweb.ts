/**
 * A small local DICOMweb server for tests: QIDO-RS, WADO-RS Part 10 (multipart) and /rendered, optional
 * Basic auth. `fail` turns it into a PACS that is down: every request answers that HTTP status, or 'drop'
 * closes each connection without an answer. `files` serves plain bytes at /files/<name> (attachment URLs).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeInstance {
  study: string;
  series: string;
  sop: string;
  modality: string;
  frames?: number;
  part10: Buffer;
  rendered?: Buffer;
}

export interface FakeDicomWeb {
  url: string;
  /** Base of the /files/<name> route. */
  filesUrl: string;
  fail: number | 'drop' | undefined;
  requests: { url: string; accept?: string; authorization?: string }[];
  close(): Promise<void>;
}

export interface FakeFile {
  body: Buffer;
  contentType?: string;
}

export async function startFakeDicomWeb(instances: FakeInstance[], o: { basic?: string; root?: string; files?: Map<string, FakeFile> } = {}): Promise<FakeDicomWeb> {
  const root = o.root ?? '/dicom-web';
  const requests: FakeDicomWeb['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', accept: req.headers.accept, authorization: req.headers.authorization });
    if (fake.fail === 'drop') return void req.socket.destroy();
    if (fake.fail !== undefined) return void res.writeHead(fake.fail).end();
    const file = req.url?.startsWith('/files/') ? o.files?.get(decodeURIComponent(req.url.slice(7))) : undefined;
    if (file) return void res.writeHead(200, file.contentType ? { 'content-type': file.contentType } : {}).end(file.body);
    if (o.basic && req.headers.authorization !== `Basic ${Buffer.from(o.basic).toString('base64')}`) {
      res.writeHead(401, { 'www-authenticate': 'Basic' }).end();
      return;
    }
    const u = new URL(req.url ?? '/', 'http://x');
    if (!u.pathname.startsWith(root)) return void res.writeHead(404).end();
    const p = u.pathname.slice(root.length).split('/').filter(Boolean);
    // /studies/{st}[/series/{se}]/instances
    if (p[0] === 'studies' && p.at(-1) === 'instances') {
      const mod = u.searchParams.get('Modality');
      const rows = instances
        .filter((i) => i.study === p[1] && (p[2] !== 'series' || i.series === p[3]) && (!mod || i.modality === mod))
        .map((i) => ({
          '0020000D': { vr: 'UI', Value: [i.study] },
          '0020000E': { vr: 'UI', Value: [i.series] },
          '00080018': { vr: 'UI', Value: [i.sop] },
          '00080060': { vr: 'CS', Value: [i.modality] },
          ...(i.frames ? { '00280008': { vr: 'IS', Value: [i.frames] } } : {}),
        }));
      if (rows.length === 0) return void res.writeHead(204).end();
      return void res.writeHead(200, { 'content-type': 'application/dicom+json' }).end(JSON.stringify(rows));
    }
    const inst = instances.find((i) => i.study === p[1] && i.series === p[3] && i.sop === p[5]);
    if (p[0] !== 'studies' || p[2] !== 'series' || p[4] !== 'instances' || !inst) return void res.writeHead(404).end();
    if (p.length === 6) {
      if (!/multipart\/related/.test(req.headers.accept ?? '')) return void res.writeHead(406).end();
      const b = 'fake-boundary-7d3';
      const body = Buffer.concat([
        Buffer.from(`preamble\r\n--${b}\r\nContent-Type: application/dicom\r\nContent-Length: ${inst.part10.length}\r\n\r\n`),
        inst.part10,
        Buffer.from(`\r\n--${b}--\r\n`),
      ]);
      return void res.writeHead(200, { 'content-type': `multipart/related; type="application/dicom"; boundary="${b}"` }).end(body);
    }
    if (p.at(-1) === 'rendered' && inst.rendered) {
      if (req.headers.accept !== 'image/jpeg') return void res.writeHead(400).end();
      return void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(inst.rendered);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const fake: FakeDicomWeb = {
    url: `http://127.0.0.1:${port}${root}`,
    filesUrl: `http://127.0.0.1:${port}/files`,
    fail: undefined,
    requests,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  return fake;
}
