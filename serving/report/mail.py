"""Email the rendered report through SMTP (the HTML file attached and as the body)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from serving.settings import ServingSettings


def build_message(report: Path, stamp: str, sender: str, recipients: list[str]) -> EmailMessage:
    """A multipart message: plain-text summary, the HTML report inline and attached."""
    message = EmailMessage()
    message["Subject"] = f"Leadership report: {stamp}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    html = report.read_text(encoding="utf-8")
    message.set_content(f"{stamp}\n\nThe report is attached ({report.name}).\n")
    message.add_alternative(html, subtype="html")
    message.add_attachment(
        html.encode("utf-8"), maintype="text", subtype="html", filename=report.name
    )
    return message


def send_report(report: Path, stamp: str, settings: ServingSettings) -> list[str]:
    """Send the report to ``WAREHOUSE_SMTP_TO``; return the recipients."""
    recipients = settings.smtp_recipients
    if not settings.smtp_host or not recipients:
        raise ValueError("set WAREHOUSE_SMTP_HOST and WAREHOUSE_SMTP_TO to email the report")
    message = build_message(report, stamp, settings.smtp_from, recipients)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message)
    return recipients
