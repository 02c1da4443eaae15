import { startTestPlatform, type TestPlatform } from './support/test-platform.js';
describe('debug', () => {
  let t: TestPlatform;
  beforeAll(async () => { t = await startTestPlatform(); });
  afterAll(async () => { await t?.close(); });
  it('x', async () => {
    const exportUrl = `${t.platform.gatewayUrl}/api/evidence/audit-events.csv`;
    const u = await fetch(exportUrl, { headers: { 'x-pomerium-jwt-assertion': await t.assertion({ subject: 'routes-user' }) } });
    console.log('user', u.status, await u.text());
    const a = await t.adminAssertion();
    const r1 = await fetch(exportUrl, { headers: { 'x-pomerium-jwt-assertion': a } });
    console.log('admin', r1.status, await r1.text());
    const r3 = await fetch(`${new URL(t.platform.subgraphUrls.iam!).origin}/readyz`);
    console.log('iam readyz', r3.status, await r3.text());
    console.log(t.logs.lines().filter((l) => l.level >= 40 || l.status >= 400).map((l) => JSON.stringify(l)).join('\n'));
  });
});
