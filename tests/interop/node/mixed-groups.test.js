'use strict'
// Issue 3, acceptance 4: a kafkajs group and a Java group over the same
// topic each see every record.  The Java side is the real
// kafka-console-consumer (kafka-tools 4.x) with --group, started as a
// subprocess on the Maven classpath that scripts/deps.sh resolves; it runs
// at the same time as the kafkajs group consumer.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { bootstrap, kafka, uniqueTopic } = require('./samsa')

const PARTITIONS = 4
const RECORDS = 2000
const CLASSPATH = path.join(__dirname, '..', 'java', 'target', 'test-classpath.txt')

function javaGroupConsumer (topic, group) {
  const cp = fs.readFileSync(CLASSPATH, 'utf8').trim()
  assert.ok(cp.length > 0, `no Java classpath in ${CLASSPATH} (scripts/deps.sh)`)
  const child = spawn('java', ['-cp', cp, 'org.apache.kafka.tools.consumer.ConsoleConsumer',
    '--bootstrap-server', bootstrap(), '--topic', topic, '--group', group,
    '--from-beginning', '--max-messages', String(RECORDS), '--timeout-ms', '90000'],
  { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { err += d })
  const done = new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => resolve({ code, lines: out.split('\n').filter((l) => l.length > 0), err }))
  })
  return done
}

test('a kafkajs group and a Java group each see every record', { timeout: 180000 }, async () => {
  const client = kafka('samsa-interop-mixed-groups')
  const topic = uniqueTopic('mixed-groups')
  const admin = client.admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true })
  } finally {
    await admin.disconnect()
  }

  const java = javaGroupConsumer(topic, uniqueTopic('java-group'))
  const consumer = client.consumer({ groupId: uniqueTopic('kafkajs-group') })
  await consumer.connect()
  const seen = new Set()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    const allSeen = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kafkajs group saw ${seen.size} of ${RECORDS}`)), 150000)
      consumer.run({
        eachMessage: async ({ message }) => {
          const v = message.value.toString()
          assert.ok(!seen.has(v), `kafkajs group saw ${v} twice`)
          seen.add(v)
          if (seen.size === RECORDS) {
            clearTimeout(timer)
            resolve()
          }
        }
      }).catch(reject)
    })

    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const messages = []
    for (let i = 0; i < RECORDS; i++) messages.push({ key: `k${i % 17}`, value: `m${i}` })
    await producer.send({ topic, acks: -1, messages })
    await producer.disconnect()

    await allSeen
  } finally {
    await consumer.disconnect()
  }

  const j = await java
  assert.equal(j.code, 0, `console consumer exited ${j.code}: ${j.err.slice(-2000)}`)
  const javaSeen = new Set(j.lines)
  assert.equal(j.lines.length, RECORDS, `Java group printed ${j.lines.length} lines`)
  for (let i = 0; i < RECORDS; i++) {
    assert.ok(seen.has(`m${i}`), `kafkajs group missed m${i}`)
    assert.ok(javaSeen.has(`m${i}`), `Java group missed m${i}`)
  }
})
