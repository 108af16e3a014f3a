'use strict'
// kafkajs 2.2.4's transactional producer and the group admin calls: an
// aborted and a committed transaction as a read_committed and a
// read_uncommitted consumer see them, offsets committed inside a
// transaction (sendOffsets), and the groups listed, described, their
// offsets reset and the groups deleted.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { kafka, uniqueTopic } = require('./samsa')

let client
let admin

before(async () => {
  client = kafka('samsa-interop-node-txn')
  admin = client.admin()
  await admin.connect()
})

after(async () => {
  if (admin) await admin.disconnect()
})

// Every value of topic from the beginning, through a group consumer, until
// `want` of them arrived (and a second more, to catch extras).
async function readAll (topic, want, readUncommitted) {
  const consumer = client.consumer({ groupId: uniqueTopic('node-txn-reader'), readUncommitted, maxWaitTimeInMs: 200 })
  const values = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    let resolve
    const enough = new Promise(r => { resolve = r })
    await consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value.toString())
        if (values.length >= want) resolve()
      }
    })
    const timer = new Promise((_resolve, reject) =>
      setTimeout(() => reject(new Error(`read ${values.length} of ${want} records of ${topic}`)), 60000))
    await Promise.race([enough, timer])
    await new Promise(r => setTimeout(r, 1000))
  } finally {
    await consumer.disconnect()
  }
  return values
}

test('transactions: aborted records hidden from read_committed, offsets sent in a transaction', { timeout: 180000 }, async () => {
  const topic = uniqueTopic('node-txn')
  const group = uniqueTopic('node-txn-group')
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  const producer = client.producer({
    transactionalId: uniqueTopic('node-txid'), idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false
  })
  await producer.connect()
  try {
    const messages = tag => Array.from({ length: 20 }, (_, i) => ({ value: `${tag}-${i}` }))
    const aborted = await producer.transaction()
    await aborted.send({ topic, messages: messages('aborted') })
    await aborted.abort()

    const committed = await producer.transaction()
    await committed.send({ topic, messages: messages('committed') })
    await committed.sendOffsets({
      consumerGroupId: group,
      topics: [{ topic, partitions: [{ partition: 0, offset: '17' }] }]
    })
    await committed.commit()
  } finally {
    await producer.disconnect()
  }

  const [offsets] = await admin.fetchTopicOffsets(topic)
  assert.equal(offsets.high, '42', '40 records and two markers')
  const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  assert.equal(fetched.partitions[0].offset, '17', 'the offset sent in the committed transaction')

  const visible = await readAll(topic, 20, false)
  assert.deepEqual(visible, Array.from({ length: 20 }, (_, i) => `committed-${i}`))
  const all = await readAll(topic, 40, true)
  assert.equal(all.length, 40)
  assert.equal(all.filter(v => v.startsWith('aborted-')).length, 20)
})

test('group admin: list, describe, reset offsets, delete', { timeout: 120000 }, async () => {
  const topic = uniqueTopic('node-groups')
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })
  const producer = client.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  await producer.send({
    topic,
    messages: Array.from({ length: 10 }, (_, i) => ({ value: String(i), partition: i % 2 }))
  })
  await producer.disconnect()

  const groupId = uniqueTopic('node-admin-group')
  const consumer = client.consumer({ groupId, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let seen = 0
  let resolve
  const allSeen = new Promise(r => { resolve = r })
  await consumer.run({ eachMessage: async () => { if (++seen === 10) resolve() } })
  await allSeen
  const { groups: [live] } = await admin.describeGroups([groupId])
  assert.equal(live.state, 'Stable')
  assert.equal(live.protocolType, 'consumer')
  assert.equal(live.members.length, 1)
  await consumer.disconnect() // commits what it read

  const listed = (await admin.listGroups()).groups.find(g => g.groupId === groupId)
  assert.ok(listed, 'group not listed')
  assert.equal(listed.protocolType, 'consumer')
  let [fetched] = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.deepEqual(fetched.partitions.map(p => p.offset).sort(), ['5', '5'])

  // kafkajs commits the sentinel (-2, earliest) itself, and Kafka keeps
  // it as committed: kafkajs's own test against Kafka expects '-2'.
  await admin.resetOffsets({ groupId, topic, earliest: true })
  ;[fetched] = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.deepEqual(fetched.partitions.map(p => p.offset).sort(), ['-2', '-2'])
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 1, offset: '3' }] })
  ;[fetched] = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.equal(fetched.partitions.find(p => p.partition === 1).offset, '3')

  const [deleted] = await admin.deleteGroups([groupId])
  assert.equal(deleted.errorCode, 0)
  assert.ok(!(await admin.listGroups()).groups.some(g => g.groupId === groupId), 'group still listed after deleteGroups')
})
