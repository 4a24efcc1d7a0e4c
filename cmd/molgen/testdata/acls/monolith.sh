#!/usr/bin/env bash
# Kafka ACLs for the nodes of app blog (placements/monolith.yaml), one principal per node.
# Written by molgen from the app's call graph and the placement; after either
# changes, write it again ('molgen acls -placement FILE' prints it).
#
# Each node's principal may do what its code does through Kafka, and no more:
#   - Write, Describe, DescribeConfigs, Create on the request topic of each
#     service it calls over Kafka (from a service it hosts or a main placed
#     on it; with prefer_local on, a call to a service on the same node is
#     direct and needs none), and Describe on that service's consumer group
#     (a caller fails fast with ErrNoInstance when the group has no members);
#   - Read, Describe, DescribeConfigs, Create on the request topic of each
#     service it hosts, and Read, Describe on its consumer group;
#   - on its own reply topics (prefix molgen.blog.reply.NODE.): Read, Write,
#     Create, Delete, Describe, DescribeConfigs (each instance creates its
#     own, writes heartbeats to it, reads its replies and deletes it when it
#     stops);
#   - Write, Describe, DescribeConfigs on every reply topic of the app (prefix
#     molgen.blog.reply.) only if it hosts a service: servers answer callers
#     on any node;
#   - IdempotentWrite on the cluster (the producer is idempotent).
# So a node cannot send requests to a service it does not call, read the
# requests of a service it does not host, or, unless it serves, write into
# another node's reply topics. The broker needs an authorizer and
# allow.everyone.if.no.acl.found=false for any of this to hold.
#
# Usage:
#   KAFKA_BOOTSTRAP=broker:9096 KAFKA_ADMIN_CONFIG=admin.properties ./acls.sh
# KAFKA_ADMIN_CONFIG is a client properties file of a user who may create
# ACLs (security.protocol, sasl.*, ssl.*); KAFKA_ACLS is the ACL tool
# (default kafka-acls.sh; split into words, e.g. "scripts/kafka/kafka.sh acls").
# Adding an ACL that exists changes nothing, so the script may run again. It
# never removes one: remove what an earlier placement needed with
# kafka-acls.sh --remove.
set -euo pipefail

: "${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP to the brokers (host:port,...)}"
: "${KAFKA_ADMIN_CONFIG:?set KAFKA_ADMIN_CONFIG to the admin client properties file}"
read -r -a kafka_acls <<<"${KAFKA_ACLS:-kafka-acls.sh}"

add() {
	"${kafka_acls[@]}" --bootstrap-server "${KAFKA_BOOTSTRAP:?}" --command-config "${KAFKA_ADMIN_CONFIG:?}" --add "$@" >/dev/null
}

# node all: services posts, users; mains demo, gateway; calls over Kafka none
# node all uses no Kafka (the app's only node, prefer_local on): no ACLs.
