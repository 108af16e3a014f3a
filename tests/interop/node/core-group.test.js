'use strict'
// Acceptance 4 with the kafkajs Consumer, which always joins a group: not
// run until consumer groups land (issue 3; tests/run.sh lists it as
// pending).  Produce with kafkajs, consume with a kafkajs group consumer
// from the beginning, and compare.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { kafka, uniqueTopic } = require('./samsa')

const PARTITIONS = 3
const RECORDS = 3000

test('kafkajs producer and group consumer round trip', { timeout: 180000 }, async () => {
  const client = kafka('samsa-interop-node-group')
  const topic = uniqueTopic('node-group')
  const admin = client.admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true })
  } finally {
    await admin.disconnect()
  }

  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const messages = []
  for (let i = 0; i < RECORDS; i++) {
    messages.push({ key: `k${i % 37}`, value: `v${i}`, partition: i % PARTITIONS, headers: { seq: String(i) } })
  }
  await producer.send({ topic, acks: -1, messages })
  await producer.disconnect()

  const consumer = client.consumer({ groupId: uniqueTopic('node-group-consumer') })
  await consumer.connect()
  const seen = new Map()
  const lastSeq = new Map()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${seen.size} of ${RECORDS}`)), 150000)
      consumer.run({
        eachMessage: async ({ partition, message }) => {
          const seq = Number(message.headers.seq.toString())
          assert.equal(message.value.toString(), `v${seq}`)
          assert.equal(message.key.toString(), `k${seq % 37}`)
          assert.equal(partition, seq % PARTITIONS)
          assert.ok(!seen.has(seq), `record ${seq} twice`)
          assert.ok((lastSeq.get(partition) ?? -1) < seq, `partition ${partition} out of order at ${seq}`)
          lastSeq.set(partition, seq)
          seen.set(seq, message.offset)
          if (seen.size === RECORDS) {
            clearTimeout(timer)
            resolve()
          }
        }
      }).catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  assert.equal(seen.size, RECORDS)
})
