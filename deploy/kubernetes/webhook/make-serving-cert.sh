#!/bin/sh
# Serving certificate for peerpods-webhook, made with openssl (no cert-manager needed):
#   make-serving-cert.sh [-n namespace] [-o out-dir] [-d days] [--apply]
# Writes ca.crt/ca.key (a private CA used only for this webhook), tls.crt/tls.key (ECDSA P-256,
# DNS names of the Service) into out-dir (default ./webhook-certs, mode 0700). With --apply it also
# creates/updates Secret peer-pods-webhook-serving-cert and sets the CA as caBundle of the
# MutatingWebhookConfiguration (run it after `kubectl apply -k deploy/kubernetes/webhook`).
# Re-running it renews the certificate; the webhook reloads it without a restart.
set -eu
ns=confidential-containers-system
out=./webhook-certs
days=365
apply=false
while [ $# -gt 0 ]; do
  case "$1" in
    -n) ns=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    -d) days=$2; shift 2 ;;
    --apply) apply=true; shift ;;
    *) echo "usage: $0 [-n namespace] [-o out-dir] [-d days] [--apply]" >&2; exit 2 ;;
  esac
done
case "$ns" in *[!a-z0-9-]*|'') echo "$0: bad namespace '$ns'" >&2; exit 2 ;; esac
case "$days" in *[!0-9]*|'') echo "$0: bad days '$days'" >&2; exit 2 ;; esac

svc=peer-pods-webhook-svc
umask 077
mkdir -p "$out"
if [ ! -s "$out/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=peer-pods-webhook-ca" -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
fi
ext=$(mktemp)
csr=$(mktemp)
trap 'rm -f "$ext" "$csr"' EXIT
printf 'subjectAltName=DNS:%s,DNS:%s.%s,DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n' \
  "$svc" "$svc" "$ns" "$svc" "$ns" "$svc" "$ns" > "$ext"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$svc.$ns.svc" \
  -keyout "$out/tls.key.new" -out "$csr" 2>/dev/null
openssl x509 -req -in "$csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days "$days" \
  -extfile "$ext" -out "$out/tls.crt.new" 2>/dev/null
mv "$out/tls.key.new" "$out/tls.key"
mv "$out/tls.crt.new" "$out/tls.crt"
openssl verify -CAfile "$out/ca.crt" "$out/tls.crt" >/dev/null
echo "certificate for $svc.$ns.svc in $out (valid $days days)"

if [ "$apply" = true ]; then
  kubectl -n "$ns" create secret tls peer-pods-webhook-serving-cert --cert="$out/tls.crt" \
    --key="$out/tls.key" --dry-run=client -o yaml | kubectl apply -f -
  ca_bundle=$(base64 -w0 < "$out/ca.crt")
  # base64 text only ([A-Za-z0-9+/=]), so it can sit inside the JSON patch as is.
  case "$ca_bundle" in *[!A-Za-z0-9+/=]*) echo "$0: unexpected base64 output" >&2; exit 1 ;; esac
  kubectl patch mutatingwebhookconfiguration peer-pods-webhook-mutating-webhook-configuration --type=json \
    -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca_bundle\"}]"
fi
