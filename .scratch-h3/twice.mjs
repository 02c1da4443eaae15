import { closeOnSignals } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
closeOnSignals(createLogger({ service: 'x' }), [() => new Promise((r) => setTimeout(r, 1000))]);
setInterval(() => {}, 1000);
