//! The messages: plain text, one per order, each with a `Message-ID` made from the order and
//! the kind (so a message sent twice after a crash is recognisably the same message).

use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;

use crate::store::{MailKind, MailOrder};
use crate::wire::{Money, rfc3339};

/// The message owed for `order` of `kind`, from `from`.
pub fn compose(kind: MailKind, order: &MailOrder, from: &Mailbox) -> Result<Message, String> {
    let to: Mailbox = format!("{} <{}>", order.username, order.email)
        .parse()
        .map_err(|error| format!("recipient {:?}: {error}", order.email))?;
    let id = order.order_id;
    let what = format!(
        "{} × {} at {} each, {} in all",
        order.quantity,
        order.product_name,
        Money(order.unit_price),
        Money(order.total_price)
    );
    let pay = order
        .pay_by
        .map(|pay_by| format!("\nPay it by {} or it is cancelled then.", rfc3339(pay_by)))
        .unwrap_or_default();
    let (subject, tag, body) = match kind {
        MailKind::OrderConfirmed => (
            format!("Order #{id} confirmed"),
            "confirmed",
            format!("Your order #{id} is confirmed: {what}.{pay}\n"),
        ),
        MailKind::WaitlistServed => (
            format!("Units for you: order #{id}"),
            "waitlist",
            format!("Units came free on a deal you waited for. Your order #{id}: {what}.{pay}\n"),
        ),
        MailKind::PaymentReceipt => (
            format!("Payment received for order #{id}"),
            "receipt",
            format!(
                "We received {} from your wallet for order #{id}: {what}.\n",
                Money(order.total_price)
            ),
        ),
    };
    let domain = from.email.domain().to_owned();
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<order-{id}.{tag}@{domain}>")))
        .header(ContentType::TEXT_PLAIN)
        .body(format!("Hello {},\n\n{body}\n-- Topkart\n", order.username))
        .map_err(|error| error.to_string())
}
