"""Drives a hub through a client generated from its /openapi.json by openapi-python-client.

Usage: use_client.py BASE_URL CLIENT_ID CLIENT_SECRET EVENT_URL
Prints one JSON object: what the typed client read back. Everything goes through the generated
package (`switchyard_client`, on PYTHONPATH): no hand-made request.
"""

import base64
import json
import sys
import time

from switchyard_client import AuthenticatedClient
from switchyard_client.api.deliveries import get_delivery, list_deliveries
from switchyard_client.api.events import publish_event
from switchyard_client.api.token import issue_token
from switchyard_client.api.webhooks import create_subscriptions, get_subscription
from switchyard_client.models import (
    Accepted,
    CreatedSubscriptions,
    CreateSubscriptions,
    DeliveryDetail,
    DeliveryList,
    EventTypeName,
    GrantType,
    PublishRequest,
    ResourceName,
    SubscriptionInput,
    Subscription,
    SubscriptionStatus,
    Token,
    TokenRequest,
)


def expect(answer, kind):
    if not isinstance(answer, kind):
        sys.exit(f"expected {kind.__name__}, got {answer!r}")
    return answer


def main():
    base, client_id, client_secret, event_url = sys.argv[1:5]
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    anonymous = AuthenticatedClient(base_url=base, token=basic, prefix="Basic")
    token = expect(
        issue_token.sync(
            client=anonymous,
            body=TokenRequest(grant_type=GrantType.CLIENT_CREDENTIALS),
        ),
        Token,
    )
    api = AuthenticatedClient(base_url=base, token=token.access_token)

    created = expect(
        create_subscriptions.sync(
            client=api,
            body=CreateSubscriptions(
                events=[
                    SubscriptionInput(
                        event_type=EventTypeName.OFFER_UNPUBLISHED,
                        resource_name=ResourceName.ITEM,
                        event_url=event_url,
                        partner_id="seller-1",
                        status=SubscriptionStatus.ACTIVE,
                    )
                ]
            ),
        ),
        CreatedSubscriptions,
    )
    subscription_id = created.events[0].subscription_id
    read_back = expect(get_subscription.sync(subscription_id, client=api), Subscription)

    accepted = expect(
        publish_event.sync(
            client=api,
            body=PublishRequest(
                event_type=EventTypeName.OFFER_UNPUBLISHED,
                partner_id="seller-1",
                payload={"sku": "generated-client-1"},
            ),
        ),
        Accepted,
    )

    detail = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = expect(
            list_deliveries.sync(client=api, event_id=accepted.event_id), DeliveryList
        )
        done = [d for d in listed.deliveries if str(d.status) == "succeeded"]
        if done:
            detail = expect(get_delivery.sync(done[0].id, client=api), DeliveryDetail)
            break
        time.sleep(0.1)
    if detail is None:
        sys.exit("the delivery did not succeed within 30 s")

    print(
        json.dumps(
            {
                "subscriptionId": str(subscription_id),
                "readBack": {
                    "subscriptionId": str(read_back.subscription_id),
                    "eventUrl": read_back.event_url,
                    "status": str(read_back.status),
                },
                "eventId": str(accepted.event_id),
                "deliveries": accepted.deliveries,
                "delivery": {
                    "id": str(detail.id),
                    "eventId": str(detail.event_id),
                    "subscriptionId": str(detail.subscription_id),
                    "status": str(detail.status),
                    "attempts": [
                        {"statusCode": a.status_code, "succeeded": a.succeeded}
                        for a in detail.attempts
                    ],
                },
            }
        )
    )


if __name__ == "__main__":
    main()
