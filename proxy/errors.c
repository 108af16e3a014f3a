#include "proxy/errors.h"

int16_t kerr_from_status(enum st_status st)
{
	switch (st) {
	case ST_OK:
		return KERR_NONE;
	case ST_UNAVAILABLE:
		/* Retriable for every client: retry after a metadata
		 * refresh. */
		return KERR_KAFKA_STORAGE_ERROR;
	case ST_EXISTS:
		return KERR_TOPIC_ALREADY_EXISTS;
	case ST_NOT_FOUND:
	case ST_DELETED:
		return KERR_UNKNOWN_TOPIC_OR_PARTITION;
	case ST_INVALID:
	case ST_NO_KEY:
		return KERR_INVALID_RECORD;
	case ST_CORRUPT:
		return KERR_CORRUPT_MESSAGE;
	case ST_TOO_LARGE:
		return KERR_MESSAGE_TOO_LARGE;
	case ST_BAD_TIMESTAMP:
		return KERR_INVALID_TIMESTAMP;
	case ST_OUT_OF_RANGE:
		return KERR_OFFSET_OUT_OF_RANGE;
	case ST_OUT_OF_ORDER:
		return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
	case ST_BAD_EPOCH:
		return KERR_INVALID_PRODUCER_EPOCH;
	case ST_UNKNOWN_PRODUCER:
		return KERR_UNKNOWN_PRODUCER_ID;
	case ST_TXN_STATE:
		return KERR_INVALID_TXN_STATE;
	case ST_FENCED:
		return KERR_PRODUCER_FENCED;
	case ST_PID_MAPPING:
		return KERR_INVALID_PRODUCER_ID_MAPPING;
	case ST_CONCURRENT:
		return KERR_CONCURRENT_TRANSACTIONS;
	case ST_BAD_TIMEOUT:
		return KERR_INVALID_TRANSACTION_TIMEOUT;
	}
	return KERR_UNKNOWN_SERVER_ERROR;
}

int16_t kerr_from_coordinator(enum st_status st, int16_t v,
			      int16_t fenced_since)
{
	if (st == ST_UNAVAILABLE)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if (st == ST_FENCED && v < fenced_since)
		return KERR_INVALID_PRODUCER_EPOCH;
	return kerr_from_status(st);
}
