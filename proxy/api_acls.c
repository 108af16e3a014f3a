/*
 * DescribeAcls, CreateAcls, DeleteAcls.  samsa authenticates no one and so
 * authorizes nothing: it answers as a Kafka broker without an authorizer
 * does, SECURITY_DISABLED with Kafka's message, so that kafka-acls, admin
 * UIs and MirrorMaker 2's ACL sync hear "no authorizer", not an unknown API.
 */
#include "protocol/messages.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"

/* Kafka's words (SecurityDisabledException). */
#define NO_AUTHORIZER KSTR_LIT("No Authorizer is configured on the broker")

void handle_DescribeAcls(struct request *req)
{
	struct DescribeAclsResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	resp->ErrorCode = KERR_SECURITY_DISABLED;
	resp->ErrorMessage = NO_AUTHORIZER;
	req_reply(req, resp);
}

void handle_CreateAcls(struct request *req)
{
	struct CreateAclsRequest *cr = req->body;
	struct CreateAclsResponse *resp = req_response(req);
	int32_t n = cr->Creations.count > 0 ? cr->Creations.count : 0;
	struct CreateAclsResponse_AclCreationResult *r =
		resp ? req_array(req, &resp->Results,
				 &CreateAclsResponse_AclCreationResult_struct,
				 n)
		     : NULL;
	if (!resp || (n && !r)) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		r[i].ErrorCode = KERR_SECURITY_DISABLED;
		r[i].ErrorMessage = NO_AUTHORIZER;
	}
	req_reply(req, resp);
}

void handle_DeleteAcls(struct request *req)
{
	struct DeleteAclsRequest *dr = req->body;
	struct DeleteAclsResponse *resp = req_response(req);
	int32_t n = dr->Filters.count > 0 ? dr->Filters.count : 0;
	struct DeleteAclsResponse_DeleteAclsFilterResult *r =
		resp ? req_array(
			       req, &resp->FilterResults,
			       &DeleteAclsResponse_DeleteAclsFilterResult_struct,
			       n)
		     : NULL;
	if (!resp || (n && !r)) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		r[i].ErrorCode = KERR_SECURITY_DISABLED;
		r[i].ErrorMessage = NO_AUTHORIZER;
	}
	req_reply(req, resp);
}
