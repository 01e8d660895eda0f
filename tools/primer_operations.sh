#!/usr/bin/env bash
# One request for each of the 16 operations of Primer's Payments API v2.4, shaped as the spec's
# examples, against a running gateway (`make run`). Needs API_KEY (the key `make run` printed) and
# MID (the merchant's id: `gateway merchants show sandbox`), and routing rules that hold large
# payments (the README's Primer's operations section) for the last one.
set -u
B=${B:-http://127.0.0.1:8080}
H=(-H "X-API-KEY: $API_KEY" -H "Content-Type: application/json")
show() { python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({k: d[k] for k in sys.argv[1:] if k in d} if not 'error' in d else d['error'], separators=(',',':'))[:300])" "$@"; }
req() { local m=$1 p=$2 b=${3:-}; if [ -n "$b" ]; then curl -s -o /tmp/ans -w "%{http_code}" -X "$m" "$B$p" "${H[@]}" -d "$b"; else curl -s -o /tmp/ans -w "%{http_code}" -X "$m" "$B$p" "${H[@]}"; fi; }
card() { curl -s $B/payment-instruments "${H[@]}" -d "{\"number\": \"$1\", \"expirationMonth\": \"12\", \"expirationYear\": \"2030\", \"cvv\": \"123\"${2:-}}" | python3 -c "import json,sys; print(json.load(sys.stdin)['token'])"; }
n=0; op() { n=$((n+1)); printf '%2d %-45s ' "$n" "$1"; }

op "POST /client-session"; code=$(req POST /client-session '{"orderId": "order-abc", "currencyCode": "EUR", "amount": 42, "customerId": "customer-123", "customer": {"emailAddress": "customer123@gmail.com"}, "order": {"countryCode": "FR", "lineItems": [{"itemId": "shoe-123", "description": "Blue Shoe", "amount": 42, "quantity": 1}]}, "metadata": {"productType": "Shoes"}}')
CT=$(python3 -c "import json; print(json.load(open('/tmp/ans'))['clientToken'])"); echo "$code $(show orderId amount clientTokenExpirationDate < /tmp/ans)"
op "GET /client-session?clientToken="; code=$(req GET "/client-session?clientToken=$CT"); echo "$code $(show orderId amount customer < /tmp/ans)"
op "PATCH /client-session"; code=$(req PATCH /client-session "{\"clientToken\": \"$CT\", \"amount\": 4200, \"order\": {\"lineItems\": [{\"itemId\": \"shoe-123\", \"amount\": 4200, \"quantity\": 1}]}}"); echo "$code $(show amount order < /tmp/ans)"
T1=$(card 4111111111111111 ", \"clientToken\": \"$CT\"")
op "POST /payments (the session's card)"; code=$(req POST /payments "{\"paymentMethodToken\": \"$T1\"}"); P1=$(python3 -c "import json; print(json.load(open('/tmp/ans'))['id'])"); echo "$code $(show id status orderId amount < /tmp/ans)"
op "GET /payments"; code=$(req GET "/payments?order_id=order-abc&limit=10"); echo "$code $(python3 -c "import json; d=json.load(open('/tmp/ans')); print(len(d['data']), 'payment(s)', [p['status'] for p in d['data']])")"
op "GET /payments/{id}"; code=$(req GET "/payments/$P1?expand=transactions.events"); echo "$code $(show id status < /tmp/ans)"
op "POST /payments/{id}/capture"; code=$(req POST /payments/$P1/capture '{"amount": 4200, "final": true}'); echo "$code $(show status < /tmp/ans)"
op "POST /payments/{id}/refund"; code=$(req POST /payments/$P1/refund '{"amount": 1000, "reason": "customer returned an item"}'); echo "$code $(show status < /tmp/ans)"
T2=$(card 4111111111111111)
op "POST /payments/{id}/cancel"; code=$(req POST /payments "{\"orderId\": \"order-2\", \"currencyCode\": \"EUR\", \"amount\": 500, \"paymentMethodToken\": \"$T2\"}"); P2=$(python3 -c "import json; print(json.load(open('/tmp/ans'))['id'])"); code=$(req POST /payments/$P2/cancel '{"reason": "customer changed their mind"}'); echo "$code $(show status < /tmp/ans)"
T3=$(card 4000000000003220)
op "POST /payments/{id}/resume (3-D Secure card)"; code=$(req POST /payments "{\"orderId\": \"order-3\", \"currencyCode\": \"EUR\", \"amount\": 700, \"paymentMethodToken\": \"$T3\"}"); P3=$(python3 -c "import json; print(json.load(open('/tmp/ans'))['id'])"); before=$(show status requiredAction < /tmp/ans); code=$(req POST /payments/$P3/resume '{"resumeToken": "checkout-resume-token"}'); echo "$code $before -> $(show status < /tmp/ans)"
T4=$(card 5555555555554444)
op "POST /payments/{id}/adjust-authorization"; code=$(req POST /payments "{\"orderId\": \"order-4\", \"currencyCode\": \"EUR\", \"amount\": 1000, \"paymentMethodToken\": \"$T4\", \"paymentMethod\": {\"authorizationType\": \"ESTIMATED\"}}"); P4=$(python3 -c "import json; print(json.load(open('/tmp/ans'))['id'])"); code=$(req POST /payments/$P4/adjust-authorization '{"amount": 1500}'); echo "$code $(show status amount < /tmp/ans)"
T5=$(card 4242424242424242)
op "POST /payment-instruments/{token}/vault"; code=$(req POST /payment-instruments/$T5/vault '{"customerId": "customer-123"}'); V=$(python3 -c "import json; print(json.load(open('/tmp/ans'))['token'])"); echo "$code $(show tokenType customerId default < /tmp/ans)"
op "GET /payment-instruments?customer_id="; code=$(req GET "/payment-instruments?customer_id=customer-123"); echo "$code $(python3 -c "import json; d=json.load(open('/tmp/ans')); print([(m['tokenType'], m['paymentMethodData']['last4Digits']) for m in d['data']])")"
op "POST /payment-instruments/{token}/default"; code=$(req POST /payment-instruments/$V/default); echo "$code $(show default < /tmp/ans)"
op "DELETE /payment-instruments/{token}"; code=$(req DELETE /payment-instruments/$V); echo "$code $(show deleted < /tmp/ans)"

T6=$(card 4111111111111111)
op "POST /payments/{id}/authorize (a held payment)"; code=$(req POST /payments "{\"orderId\": \"order-6\", \"currencyCode\": \"EUR\", \"amount\": 150000, \"paymentMethodToken\": \"$T6\"}"); P6=$(python3 -c "import json; print(json.load(open('/tmp/ans'))['id'])"); before=$(show status < /tmp/ans); code=$(req POST /payments/$P6/authorize "{\"processor\": {\"processorMerchantId\": \"$MID\", \"name\": \"SANDBOX\"}}"); echo "$code $before -> $(show status processor < /tmp/ans)"
