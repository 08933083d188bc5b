#!/bin/sh
# Rolls the checkout service out to one cluster with kubectl.
# Usage: rollout.sh --context CTX --image REF --canary PCT --replicas N
set -eu
while [ $# -gt 0 ]; do
  case $1 in
    --context) ctx=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --canary) canary=$2; shift 2 ;;
    --replicas) replicas=$2; shift 2 ;;
    *) echo "rollout.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
kubectl --context "$ctx" --token "$KUBE_TOKEN" -n checkout scale deployment/checkout --replicas "$replicas"
kubectl --context "$ctx" --token "$KUBE_TOKEN" -n checkout set image deployment/checkout "checkout=$image"
kubectl --context "$ctx" --token "$KUBE_TOKEN" -n checkout annotate deployment/checkout "acme.dev/canary=$canary" --overwrite
kubectl --context "$ctx" --token "$KUBE_TOKEN" -n checkout rollout status deployment/checkout --timeout=10m
