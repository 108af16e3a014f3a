'use strict'
// Helpers for the kafkajs interop tests.  The broker comes from
// SAMSA_BOOTSTRAP; without it the tests fail, they never skip.

const { Kafka, logLevel } = require('kafkajs')

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

function bootstrap () {
  const b = (process.env.SAMSA_BOOTSTRAP || '').trim()
  if (!b) {
    throw new Error('SAMSA_BOOTSTRAP is not set: run through tests/run.sh interop node')
  }
  return b
}

function kafka (clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap()],
    logLevel: logLevel.WARN,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 200 }
  })
}

function uniqueTopic (prefix) {
  return `${prefix}-${Date.now()}-${Math.random().toString(16).slice(2, 10)}`
}

// kafkajs keeps its Cluster factory under a private symbol; the Consumer
// and the Admin are built on the same Cluster and Broker objects.
function createCluster (client) {
  const sym = Object.getOwnPropertySymbols(client)
    .find(s => s.description === 'private:Kafka:createCluster')
  if (!sym) throw new Error('kafkajs internals changed: no private:Kafka:createCluster')
  return client[sym]({ metadataMaxAge: 300000, allowAutoTopicCreation: false })
}

// Reads partition `partition` of `topic` from offset `from` up to (not
// including) `end`, without a consumer group: kafkajs's own Fetch request
// and record-batch decoder (what its Consumer runs under the group
// protocol), sent to the partition leader found through Metadata.  Like the
// Consumer, it drops the records that precede the fetch offset in the first
// batch returned (a fetch inside a batch returns the whole batch).
async function readPartition (client, topic, partition, from, end, { timeoutMs = 60000 } = {}) {
  const cluster = createCluster(client)
  await cluster.connect()
  try {
    await cluster.addTargetTopic(topic)
    await cluster.refreshMetadata()
    const leaders = cluster.findLeaderForPartitions(topic, [partition])
    const nodeIds = Object.keys(leaders)
    if (nodeIds.length !== 1) throw new Error(`no leader for ${topic}/${partition}`)
    const broker = await cluster.findBroker({ nodeId: nodeIds[0] })
    const out = []
    let offset = BigInt(from)
    const deadline = Date.now() + timeoutMs
    while (offset < BigInt(end)) {
      if (Date.now() > deadline) {
        throw new Error(`read ${out.length} records of ${topic}/${partition} up to offset ${offset}, wanted ${end}`)
      }
      const res = await broker.fetch({
        replicaId: -1,
        isolationLevel: 1,
        maxWaitTime: 500,
        minBytes: 1,
        maxBytes: 4 << 20,
        topics: [{ topic, partitions: [{ partition, fetchOffset: offset.toString(), maxBytes: 1 << 20 }] }]
      })
      for (const t of res.responses) {
        for (const p of t.partitions) {
          if (p.errorCode !== 0) throw new Error(`fetch ${topic}/${partition}: error ${p.errorCode}`)
          for (const m of p.messages) {
            const o = BigInt(m.offset)
            if (o < offset || o >= BigInt(end)) continue
            if (o !== offset) throw new Error(`${topic}/${partition}: offset ${o} where ${offset} was expected`)
            out.push(m)
            offset = o + 1n
          }
        }
      }
    }
    return out
  } finally {
    await cluster.disconnect()
  }
}

module.exports = { bootstrap, kafka, uniqueTopic, readPartition }
