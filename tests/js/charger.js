#!/usr/bin/env node
// An independent OCPP charge point (ocpp-rpc, strict JSON-schema validation of every call and answer in
// both directions) that the gateway tests drive as a subprocess.
//
//   node charger.js <endpoint> <identity> <ocpp1.6|ocpp2.0.1> [password]
//
// It boots, reports a connector status, starts a transaction and sends meter values, then prints one JSON
// line per event on stdout ({"event": "ready"|"call"|"error"|"closed", ...}). Every call the gateway sends
// is validated by ocpp-rpc against the OCPP schema, printed, and answered Accepted. It exits when its
// stdin says "quit" (code 0) or when anything fails (code 1).
'use strict';

const { RPCClient } = require('ocpp-rpc');
const readline = require('node:readline');

const [endpoint, identity, protocol, password] = process.argv.slice(2);
if (!endpoint || !identity || !['ocpp1.6', 'ocpp2.0.1'].includes(protocol)) {
    console.error('usage: charger.js <endpoint> <identity> <ocpp1.6|ocpp2.0.1> [password]');
    process.exit(2);
}

const say = (event, data = {}) => process.stdout.write(JSON.stringify({ event, ...data }) + '\n');
const now = () => new Date().toISOString();

const client = new RPCClient({
    endpoint, identity, password, protocols: [protocol], strictMode: true, reconnect: false, callTimeoutMs: 10000,
});

client.handle(({ method, params }) => {
    say('call', { method, params });
    if (method === 'GetConfiguration') {
        return { configurationKey: [{ key: 'HeartbeatInterval', readonly: false, value: '300' }] };
    }
    if (method === 'GetVariables') {
        return { getVariableResult: params.getVariableData.map((d) => ({
            attributeStatus: 'Accepted', component: d.component, variable: d.variable, attributeValue: '300' })) };
    }
    return { status: 'Accepted' };
});
client.on('close', ({ code, reason }) => say('closed', { code, reason: String(reason) }));
client.on('badMessage', ({ error }) => say('error', { where: 'badMessage', message: String(error) }));

async function session16() {
    const boot = await client.call('BootNotification', {
        chargePointVendor: 'IndependentJS', chargePointModel: 'StrictBox', firmwareVersion: '9.9.9' });
    await client.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging' });
    const authorized = await client.call('Authorize', { idTag: 'JS-TAG' });
    const started = await client.call('StartTransaction', {
        connectorId: 1, idTag: 'JS-TAG', meterStart: 500, timestamp: now() });
    await client.call('MeterValues', { connectorId: 1, transactionId: started.transactionId, meterValue: [{
        timestamp: now(),
        sampledValue: [
            { value: '12.5', measurand: 'Current.Import', phase: 'L1', unit: 'A' },
            { value: '12.0', measurand: 'Current.Import', phase: 'L2', unit: 'A' },
            { value: '11.5', measurand: 'Current.Import', phase: 'L3', unit: 'A' },
            { value: '16', measurand: 'Current.Offered', unit: 'A' },
            { value: '8280', measurand: 'Power.Active.Import', unit: 'W' },
            { value: '2.25', measurand: 'Energy.Active.Import.Register', unit: 'kWh' },
        ] }] });
    const heartbeat = await client.call('Heartbeat', {});
    return { boot, authorized, transactionId: started.transactionId, heartbeat };
}

async function session201() {
    const boot = await client.call('BootNotification', {
        reason: 'PowerUp', chargingStation: { vendorName: 'IndependentJS', model: 'StrictBox', firmwareVersion: '9.9.9' } });
    await client.call('StatusNotification', {
        timestamp: now(), connectorStatus: 'Occupied', evseId: 1, connectorId: 1 });
    const authorized = await client.call('Authorize', { idToken: { idToken: 'JS-TAG', type: 'ISO14443' } });
    const started = await client.call('TransactionEvent', {
        eventType: 'Started', timestamp: now(), triggerReason: 'Authorized', seqNo: 0,
        transactionInfo: { transactionId: 'js-tx-1', chargingState: 'Charging' },
        evse: { id: 1, connectorId: 1 }, idToken: { idToken: 'JS-TAG', type: 'ISO14443' } });
    await client.call('MeterValues', { evseId: 1, meterValue: [{
        timestamp: now(),
        sampledValue: [
            { value: 12.5, measurand: 'Current.Import', phase: 'L1', unitOfMeasure: { unit: 'A' } },
            { value: 12.0, measurand: 'Current.Import', phase: 'L2', unitOfMeasure: { unit: 'A' } },
            { value: 11.5, measurand: 'Current.Import', phase: 'L3', unitOfMeasure: { unit: 'A' } },
            { value: 16, measurand: 'Current.Offered', unitOfMeasure: { unit: 'A' } },
            { value: 8.28, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'kW' } },
            { value: 2250, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'Wh' } },
        ] }] });
    const notified = await client.call('NotifyEvent', { generatedAt: now(), seqNo: 0, eventData: [{
        eventId: 1, timestamp: now(), trigger: 'Delta', actualValue: 'Available', eventNotificationType: 'HardWiredNotification',
        component: { name: 'Connector' }, variable: { name: 'AvailabilityState' } }] });
    const heartbeat = await client.call('Heartbeat', {});
    return { boot, authorized, transaction: started, notified, heartbeat };
}

async function main() {
    await client.connect();
    say('connected', { protocol: client.protocol });
    const answers = protocol === 'ocpp1.6' ? await session16() : await session201();
    say('ready', answers);
    for await (const line of readline.createInterface({ input: process.stdin })) {
        if (line.trim() === 'quit') break;
    }
    await client.close({ code: 1000, reason: 'done' });
}

main().then(() => process.exit(0), (err) => {
    say('error', { where: 'main', message: String(err && err.stack || err), details: err && err.details });
    process.exit(1);
});
