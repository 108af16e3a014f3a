'use strict'
// Acceptance 4, without consumer groups (issue 3): kafkajs 2.2.4 admin
// creates a topic, an idempotent producer sends a few thousand keyed records
// with headers, the offsets are checked through the admin API and every
// record is read back through kafkajs's own Fetch path, partition by
// partition.  core-group.test.js reads them with the kafkajs Consumer once
// groups exist.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { CompressionTypes } = require('kafkajs')
const { kafka, uniqueTopic, readPartition } = require('./samsa')

const PARTITIONS = 3
const RECORDS = 3000

let client
let admin

before(async () => {
  client = kafka('samsa-interop-node')
  admin = client.admin()
  await admin.connect()
})

after(async () => {
  if (admin) await admin.disconnect()
})

function record (i) {
  return {
    key: `key-${i % 101}`,
    value: `value ${i} ${'é'.repeat(i % 13)}`,
    partition: i % PARTITIONS,
    headers: { seq: String(i), source: 'kafkajs' }
  }
}

async function produceAll (topic, compression) {
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  try {
    const batch = 500
    for (let start = 0; start < RECORDS; start += batch) {
      const messages = []
      for (let i = start; i < Math.min(RECORDS, start + batch); i++) messages.push(record(i))
      const meta = await producer.send({ topic, acks: -1, compression, messages })
      for (const m of meta) assert.equal(m.errorCode, 0, JSON.stringify(m))
    }
  } finally {
    await producer.disconnect()
  }
}

async function checkRoundTrip (topic) {
  const offsets = await admin.fetchTopicOffsets(topic)
  assert.equal(offsets.length, PARTITIONS)
  let total = 0
  for (const o of offsets) {
    assert.equal(o.low, '0', `low watermark of partition ${o.partition}`)
    total += Number(o.high)
  }
  assert.equal(total, RECORDS)

  for (const o of offsets) {
    const got = await readPartition(client, topic, o.partition, 0, Number(o.high))
    assert.equal(got.length, Number(o.high))
    got.forEach((m, n) => {
      const i = o.partition + n * PARTITIONS // produce order within the partition
      const want = record(i)
      assert.equal(m.offset, String(n))
      assert.equal(m.key.toString(), want.key, `key of record ${i}`)
      assert.equal(m.value.toString(), want.value, `value of record ${i}`)
      assert.equal(m.headers.seq.toString(), want.headers.seq)
      assert.equal(m.headers.source.toString(), want.headers.source)
    })
  }
}

test('admin creates, lists and describes a topic', { timeout: 60000 }, async () => {
  const topic = uniqueTopic('node-admin')
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '86400000' }] }],
    waitForLeaders: true
  })
  assert.equal(created, true)
  assert.ok((await admin.listTopics()).includes(topic))
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.equal(md.topics[0].name, topic)
  assert.equal(md.topics[0].partitions.length, PARTITIONS)

  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2 /* TOPIC */, name: topic }]
  })
  assert.equal(resources[0].errorCode, 0)
  const entry = name => resources[0].configEntries.find(e => e.configName === name)
  assert.equal(entry('retention.ms').configValue, '86400000')
  assert.equal(entry('retention.ms').isDefault, false)
  assert.equal(entry('cleanup.policy').configValue, 'delete')

  await admin.deleteTopics({ topics: [topic], timeout: 30000 })
  for (let i = 0; i < 100 && (await admin.listTopics()).includes(topic); i++) {
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  assert.ok(!(await admin.listTopics()).includes(topic), 'topic still listed after deleteTopics')
})

for (const [name, codec] of [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]) {
  test(`idempotent producer round trip, ${name}`, { timeout: 120000 }, async () => {
    const topic = uniqueTopic(`node-core-${name}`)
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true })
    await produceAll(topic, codec)
    await checkRoundTrip(topic)
  })
}

test('acks 0 and 1 producers, offsets by timestamp, delete records', { timeout: 120000 }, async () => {
  const topic = uniqueTopic('node-acks')
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  const producer = client.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const before = Date.now()
  try {
    for (const acks of [1, 0]) {
      for (let i = 0; i < 50; i++) {
        await producer.send({ topic, acks, messages: [{ value: `acks${acks}-${i}` }] })
      }
    }
  } finally {
    await producer.disconnect()
  }
  // acks=0 gets no answer: wait until the broker has appended them all.
  let high = 0
  for (let i = 0; i < 150 && high < 100; i++) {
    high = Number((await admin.fetchTopicOffsets(topic))[0].high)
    if (high < 100) await new Promise(resolve => setTimeout(resolve, 200))
  }
  assert.equal(high, 100)
  const got = await readPartition(client, topic, 0, 0, 100)
  assert.deepEqual(got.map(m => m.value.toString()),
    [...Array(50).keys()].map(i => `acks1-${i}`).concat([...Array(50).keys()].map(i => `acks0-${i}`)))

  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, before - 60000)
  assert.equal(byTime[0].offset, '0')

  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '30' }] })
  const after = await admin.fetchTopicOffsets(topic)
  assert.equal(after[0].low, '30')
  assert.equal(after[0].high, '100')
  const rest = await readPartition(client, topic, 0, 30, 100)
  assert.equal(rest[0].value.toString(), 'acks1-30')
})
