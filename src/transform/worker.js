// A transform handler's thread. It loads the module once, then answers invocations: it builds the
// Firehose event (base64 encoding happens here, off the main event loop), calls
// handler(event, context[, callback]) as Lambda's Node.js runtime would, checks the response
// against Firehose's contract and decodes it. A handler cannot reach the pipeline from here: the
// worst it can do is fail, hang (the pool terminates this thread) or exit (the pool replaces it).
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

const RESULTS = { Ok: 0, Dropped: 1, ProcessingFailed: 2 };
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

class ContractError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

let handler;
try {
  const loaded = await import(pathToFileURL(workerData.module).href);
  handler = loaded.handler ?? loaded.default?.handler ?? (typeof loaded.default === 'function' ? loaded.default : undefined);
  if (typeof handler !== 'function') throw new Error('it exports no handler(event, context) function');
  parentPort.postMessage({ type: 'ready' });
} catch (err) {
  parentPort.postMessage({ type: 'load-error', message: `cannot load transform ${workerData.module}: ${err?.message ?? err}` });
}

parentPort.on('message', async (task) => {
  const started = Date.now();
  const event = {
    invocationId: task.invocationId,
    deliveryStreamArn: task.deliveryStreamArn,
    region: task.region,
    ...task.sourceFields,
    records: task.records.map((r) => {
      const record = {
        recordId: r.recordId,
        approximateArrivalTimestamp: r.approximateArrivalTimestamp,
        data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength).toString('base64'),
      };
      if (task.recordMetadataKey) record[task.recordMetadataKey] = r.metadata;
      return record;
    }),
  };
  const context = {
    awsRequestId: task.invocationId,
    functionName: workerData.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: workerData.functionName,
    memoryLimitInMB: '0',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, task.timeoutMs - (Date.now() - started)),
  };
  try {
    const response = await invoke(event, context);
    const outcome = check(response, task.records);
    parentPort.postMessage({ type: 'result', id: task.id, ok: true, ...outcome }, outcome.data.filter(Boolean).map((d) => d.buffer));
  } catch (err) {
    parentPort.postMessage({
      type: 'result',
      id: task.id,
      ok: false,
      errorCode: err instanceof ContractError ? err.code : 'Lambda.FunctionError',
      errorMessage: String(err?.message ?? err).slice(0, 2000),
    });
  }
});

function invoke(event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (err, result) => {
      if (settled) return;
      settled = true;
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(result);
    };
    const returned = handler(event, context, callback);
    if (returned && typeof returned.then === 'function') {
      returned.then((result) => callback(null, result), (err) => callback(err ?? new Error('handler rejected')));
    } else if (handler.length < 3) {
      callback(null, returned);
    }
  });
}

/** Firehose's contract: every recordId once, a known result, base64 data for Ok. */
function check(response, inputs) {
  if (!response || typeof response !== 'object' || !Array.isArray(response.records)) {
    throw new ContractError('Lambda.InvalidResponse', 'the handler must return { records: [...] }');
  }
  const index = new Map(inputs.map((r, i) => [r.recordId, i]));
  const results = new Uint8Array(inputs.length).fill(255);
  const data = new Array(inputs.length).fill(null);
  const partitionKeys = new Array(inputs.length).fill(null);
  for (const out of response.records) {
    const i = index.get(out?.recordId);
    if (i === undefined) throw new ContractError('Lambda.MissingRecordId', `the response has a recordId that was not sent: ${JSON.stringify(out?.recordId)}`);
    if (results[i] !== 255) throw new ContractError('Lambda.DuplicatedRecordId', `recordId ${JSON.stringify(out.recordId)} appears more than once`);
    const result = RESULTS[out.result];
    if (result === undefined) throw new ContractError('Lambda.InvalidResult', `recordId ${JSON.stringify(out.recordId)}: result must be Ok, Dropped or ProcessingFailed, got ${JSON.stringify(out.result)}`);
    results[i] = result;
    if (result === RESULTS.Ok) {
      if (typeof out.data !== 'string' || !BASE64.test(out.data)) {
        throw new ContractError('Lambda.InvalidData', `recordId ${JSON.stringify(out.recordId)}: data must be base64`);
      }
      data[i] = new Uint8Array(Buffer.from(out.data, 'base64'));
    }
    const keys = out.metadata?.partitionKeys;
    if (keys !== undefined && keys !== null) {
      if (typeof keys !== 'object' || Object.values(keys).some((v) => typeof v !== 'string')) {
        throw new ContractError('Lambda.InvalidPartitionKeys', `recordId ${JSON.stringify(out.recordId)}: metadata.partitionKeys must map names to strings`);
      }
      partitionKeys[i] = keys;
    }
  }
  const missing = inputs.findIndex((_, i) => results[i] === 255);
  if (missing !== -1) throw new ContractError('Lambda.MissingRecordId', `recordId ${JSON.stringify(inputs[missing].recordId)} is missing from the response`);
  return { results, data, partitionKeys };
}
