// kafkajs logging in to samsa with SASL/PLAIN (run by tests/interop/sasl.sh;
// not a *.test.js file, so the node suite does not run it against the
// shared samsa, which takes no logins).
//
//   node sasl_login.js BROKER USER PASSWORD
//
// Prints the topics on success; on failure prints the error's name and
// message and exits 1.
const { Kafka, logLevel } = require('kafkajs');

const [broker, username, password] = process.argv.slice(2);

(async () => {
  const kafka = new Kafka({
    brokers: [broker],
    sasl: { mechanism: 'plain', username, password },
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
