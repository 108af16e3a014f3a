/*
 * Writes the fuzzer's seed corpus: a few valid requests as real clients send
 * them (header, tags when flexible, body), one file each, into the directory
 * named on the command line.  Run by `make fuzz`; the output is also kept in
 * tests/fuzz/corpus/.
 */
#include <stdio.h>
#include <string.h>

#include "protocol/kbuf.h"
#include "protocol/kmsg.h"
#include "protocol/messages.h"
#include "protocol/record_batch.h"

static int write_request(const char *dir, const char *name,
			 const struct kf_message *m, int16_t v,
			 const void *body)
{
	struct kb_writer w = {0};
	char path[512];

	kb_write_i16(&w, m->api_key);
	kb_write_i16(&w, v);
	kb_write_i32(&w, 42);
	kb_write_string(&w, KSTR_LIT("fuzz-client"));
	if (kmsg_flexible(m, v))
		kb_write_uvarint(&w, 0);
	kmsg_encode(m, v, &w, body);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	int rc = f && kb_writer_ok(&w) && fwrite(w.buf, 1, w.len, f) == w.len
			 ? 0
			 : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	if (rc < 0)
		fprintf(stderr, "gen_corpus: cannot write %s\n", path);
	kb_writer_free(&w);
	return rc;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	int rc = 0;

	/* ApiVersions v3 and v0. */
	struct ApiVersionsRequest av;
	kmsg_init(&ApiVersionsRequest_struct, &av);
	av.ClientSoftwareName = KSTR_LIT("samsa-fuzz");
	av.ClientSoftwareVersion = KSTR_LIT("1.0");
	rc |= write_request(dir, "apiversions-v3", &kmsg_ApiVersionsRequest, 3,
			    &av);
	rc |= write_request(dir, "apiversions-v0", &kmsg_ApiVersionsRequest, 0,
			    &av);

	/* Metadata v12 for two topics, and for all topics (null). */
	struct MetadataRequest_MetadataRequestTopic mt[2];
	kmsg_init(&MetadataRequest_MetadataRequestTopic_struct, &mt[0]);
	kmsg_init(&MetadataRequest_MetadataRequestTopic_struct, &mt[1]);
	mt[0].Name = KSTR_LIT("orders");
	mt[1].Name = KSTR_LIT("payments");
	struct MetadataRequest md;
	kmsg_init(&MetadataRequest_struct, &md);
	md.Topics.count = 2;
	md.Topics.items = mt;
	md.AllowAutoTopicCreation = true;
	rc |= write_request(dir, "metadata-v12", &kmsg_MetadataRequest, 12,
			    &md);
	rc |= write_request(dir, "metadata-v1", &kmsg_MetadataRequest, 1, &md);
	md.Topics.count = -1;
	md.Topics.items = NULL;
	rc |= write_request(dir, "metadata-v12-all", &kmsg_MetadataRequest, 12,
			    &md);

	/* Produce v9 and v3 with one real record batch. */
	struct kb_writer batch = {0};
	struct rb_new_record rec[2] = {
		{.Timestamp = 1700000000000,
		 .Key = KSTR_LIT("k1"),
		 .Value = KSTR_LIT("hello")},
		{.Timestamp = 1700000000001,
		 .Key = KSTR_NULL,
		 .Value = KSTR_LIT("world")},
	};
	char err[128];
	if (rb_build(&batch, 0, 0, -1, -1, -1, rec, 2, err, sizeof(err)) < 0) {
		fprintf(stderr, "gen_corpus: %s\n", err);
		return 1;
	}
	struct ProduceRequest_PartitionProduceData pd;
	kmsg_init(&ProduceRequest_PartitionProduceData_struct, &pd);
	pd.Index = 0;
	pd.Records = (struct kstr){(const char *)batch.buf, (int32_t)batch.len};
	struct ProduceRequest_TopicProduceData td;
	kmsg_init(&ProduceRequest_TopicProduceData_struct, &td);
	td.Name = KSTR_LIT("orders");
	td.PartitionData.count = 1;
	td.PartitionData.items = &pd;
	struct ProduceRequest pr;
	kmsg_init(&ProduceRequest_struct, &pr);
	pr.Acks = -1;
	pr.TimeoutMs = 30000;
	pr.TopicData.count = 1;
	pr.TopicData.items = &td;
	rc |= write_request(dir, "produce-v9", &kmsg_ProduceRequest, 9, &pr);
	rc |= write_request(dir, "produce-v3", &kmsg_ProduceRequest, 3, &pr);

	/* Fetch v12 (flexible, ClusterId tag) and v4. */
	struct FetchRequest_FetchPartition fp[2];
	kmsg_init(&FetchRequest_FetchPartition_struct, &fp[0]);
	kmsg_init(&FetchRequest_FetchPartition_struct, &fp[1]);
	fp[0].Partition = 0;
	fp[0].FetchOffset = 5;
	fp[0].PartitionMaxBytes = 1048576;
	fp[1].Partition = 1;
	fp[1].PartitionMaxBytes = 1048576;
	struct FetchRequest_FetchTopic ft;
	kmsg_init(&FetchRequest_FetchTopic_struct, &ft);
	ft.Topic = KSTR_LIT("orders");
	ft.Partitions.count = 2;
	ft.Partitions.items = fp;
	struct FetchRequest fr;
	kmsg_init(&FetchRequest_struct, &fr);
	fr.ReplicaId = -1;
	fr.MaxWaitMs = 500;
	fr.MinBytes = 1;
	fr.MaxBytes = 52428800;
	fr.SessionEpoch = -1;
	fr.Topics.count = 1;
	fr.Topics.items = &ft;
	fr.RackId = KSTR_LIT("");
	rc |= write_request(dir, "fetch-v12", &kmsg_FetchRequest, 12, &fr);
	fr.ClusterId = KSTR_LIT("AAAAAAAAAAAAAAAAAAAAAA");
	rc |= write_request(dir, "fetch-v12-cluster", &kmsg_FetchRequest, 12,
			    &fr);
	fr.ClusterId = KSTR_NULL;
	rc |= write_request(dir, "fetch-v4", &kmsg_FetchRequest, 4, &fr);
	kb_writer_free(&batch);
	return rc ? 1 : 0;
}
