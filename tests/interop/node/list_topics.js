// kafkajs listing topics with the security a samsa of a shell test asks
// for (run by tests/interop/sasl.sh and tls.sh; not a *.test.js file, so
// the node suite does not run it against the shared samsa).
//
//   node list_topics.js BROKER [USER PASSWORD]
//
// USER and PASSWORD: log in with SASL/PLAIN, or with the mechanism named
// by SAMSA_SASL_MECHANISM (kafkajs's name: scram-sha-256).  SAMSA_TLS_CA=FILE in the
// environment: speak TLS, trusting the certificate authority in FILE.
// Prints the topics on success; on failure prints the error's name and
// message and exits 1.
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const [broker, username, password] = process.argv.slice(2);
const ca = process.env.SAMSA_TLS_CA;
const mechanism = process.env.SAMSA_SASL_MECHANISM || 'plain';

(async () => {
  const kafka = new Kafka({
    brokers: [broker],
    sasl: username ? { mechanism, username, password } : undefined,
    ssl: ca ? { ca: [fs.readFileSync(ca)] } : undefined,
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    console.log((await admin.listTopics()).sort().join('\n'));
  } catch (e) {
    console.log(`${e.name}: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await admin.disconnect();
  }
})();
