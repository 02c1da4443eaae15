import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
console.log(nc.info.version, nc.features.get('js_allow_direct'));
const kvm = new Kvm(nc);
const kv = await kvm.create('TSCRATCH_IAM_ACCESS', { history: 1, storage: 'file' });
console.log('direct', kv.direct);
const s = await kv.status(); console.log(JSON.stringify(s.streamInfo.config));
await kv.put('a.b', 'x');
console.log((await kv.get('a.b')).string());
const r = await kv.create('c', 'y'); console.log('create rev', r);
try { await kv.create('c', 'z'); } catch (e) { console.log('create conflict', e.constructor.name, e.code, e.message, e.api_error); }
try { await kv.update('c', 'z', r+100); } catch (e) { console.log('update conflict', e.constructor.name, e.code, e.message, JSON.stringify(e.api_error)); }
const w = await kv.watch({ key: 'c' });
(async () => { for await (const e of w) console.log('watch', e.key, e.revision, e.delta, e.isUpdate, e.operation); })();
await new Promise(r => setTimeout(r, 500));
await kv.put('c', 'w');
await new Promise(r => setTimeout(r, 500));
const kv2 = await kvm.open('TNOPE_IAM_ACCESS');
try { await kv2.get('x'); } catch (e) { console.log('missing get', e.constructor.name, e.code, e.message); }
try { await kv2.watch(); } catch (e) { console.log('missing watch', e.constructor.name, e.code, e.message); }
w.stop();
await kv.destroy();
await nc.close();
