#!/usr/bin/env bash
# Kafka ACLs for the nodes of app blog (placements/all-remote.yaml), one principal per node.
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

# node content: services posts, users; mains none; calls over Kafka users
echo "acls.sh: User:molgen-blog-content (node content)" >&2
add --allow-principal 'User:molgen-blog-content' --cluster --operation IdempotentWrite # an idempotent producer
add --allow-principal 'User:molgen-blog-content' --topic 'molgen.blog.reply.' --resource-pattern-type prefixed --operation Write --operation Describe --operation DescribeConfigs # answers callers on every node
add --allow-principal 'User:molgen-blog-content' --topic 'molgen.blog.reply.content.' --resource-pattern-type prefixed --operation Read --operation Write --operation Create --operation Delete --operation Describe --operation DescribeConfigs # the reply topics of its instances
add --allow-principal 'User:molgen-blog-content' --topic 'molgen.blog.req.posts' --resource-pattern-type literal --operation Read --operation Create --operation Describe --operation DescribeConfigs # hosts posts
add --allow-principal 'User:molgen-blog-content' --topic 'molgen.blog.req.users' --resource-pattern-type literal --operation Read --operation Write --operation Create --operation Describe --operation DescribeConfigs # hosts users; calls users
add --allow-principal 'User:molgen-blog-content' --group 'molgen.blog.posts' --resource-pattern-type literal --operation Read --operation Describe # hosts posts
add --allow-principal 'User:molgen-blog-content' --group 'molgen.blog.users' --resource-pattern-type literal --operation Read --operation Describe # hosts users; calls users

# node edge: services none; mains demo, gateway; calls over Kafka posts, users
echo "acls.sh: User:molgen-blog-edge (node edge)" >&2
add --allow-principal 'User:molgen-blog-edge' --cluster --operation IdempotentWrite # an idempotent producer
add --allow-principal 'User:molgen-blog-edge' --topic 'molgen.blog.reply.edge.' --resource-pattern-type prefixed --operation Read --operation Write --operation Create --operation Delete --operation Describe --operation DescribeConfigs # the reply topics of its instances
add --allow-principal 'User:molgen-blog-edge' --topic 'molgen.blog.req.posts' --resource-pattern-type literal --operation Write --operation Create --operation Describe --operation DescribeConfigs # calls posts
add --allow-principal 'User:molgen-blog-edge' --topic 'molgen.blog.req.users' --resource-pattern-type literal --operation Write --operation Create --operation Describe --operation DescribeConfigs # calls users
add --allow-principal 'User:molgen-blog-edge' --group 'molgen.blog.posts' --resource-pattern-type literal --operation Describe # calls posts
add --allow-principal 'User:molgen-blog-edge' --group 'molgen.blog.users' --resource-pattern-type literal --operation Describe # calls users
