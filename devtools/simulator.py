"""Realistic conversations, in Portuguese and English, for the demo, the seeder and the bench,
and the demo's provider, which takes the agents' replies and has the customer answer them.

A conversation is a customer writing about one topic, the business answering, a few turns,
a thanks and a close. Everything is drawn from a `random.Random` the caller owns, so a
seed reproduces the same traffic.
"""

import contextlib
import hashlib
import hmac
import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Each topic: what the customer asks, the business's answers, the customer's follow-ups.
# `{n}` takes an order, invoice or ticket number so messages are not all identical.
_TOPICS: dict[str, list[dict[str, list[str]]]] = {
    "pt": [
        {
            "ask": [
                "Olá, quero informações sobre o plano premium.",
                "Oi! Quanto custa o plano premium por mês?",
                "Bom dia, o plano premium inclui atendimento 24 horas?",
            ],
            "answer": [
                "Olá! O plano premium custa R$ 49,90 por mês e inclui suporte 24 horas.",
                "Claro! Posso enviar a tabela de preços por aqui mesmo.",
                "O premium tem fidelidade de 12 meses e o primeiro mês é grátis.",
            ],
            "follow": [
                "E como faço para contratar?",
                "Tem desconto no plano anual?",
                "Posso cancelar quando quiser?",
            ],
        },
        {
            "ask": [
                "Meu pedido {n} ainda não chegou, podem verificar?",
                "Boa tarde, qual o prazo de entrega do pedido {n}?",
                "O rastreio do pedido {n} não atualiza desde ontem.",
            ],
            "answer": [
                "Verifiquei aqui: o pedido {n} saiu para entrega hoje pela manhã.",
                "Sinto muito pela demora! A transportadora prevê a entrega em 2 dias úteis.",
                "O pedido {n} está no centro de distribuição de São Paulo.",
            ],
            "follow": [
                "Consigo trocar o endereço de entrega?",
                "Alguém precisa estar em casa para receber?",
                "Vocês mandam o código de rastreio por e-mail?",
            ],
        },
        {
            "ask": [
                "Quero cancelar a minha assinatura.",
                "Fui cobrado duas vezes na fatura {n}, pode ver isso?",
                "Preciso da segunda via do boleto da fatura {n}.",
            ],
            "answer": [
                "Entendo. Para confirmar, pode me informar o CPF do titular?",
                "Já abri a solicitação de estorno, o prazo é de até 5 dias úteis.",
                "Enviei a segunda via para o seu e-mail cadastrado.",
            ],
            "follow": [
                "Obrigado pela atenção, vou aguardar.",
                "E a multa de cancelamento, como fica?",
                "Pode mandar também por aqui?",
            ],
        },
        {
            "ask": [
                "Não consigo acessar minha conta, esqueci a senha.",
                "O aplicativo fecha sozinho quando abro o carrinho.",
                "Recebi uma mensagem de erro ao finalizar a compra.",
            ],
            "answer": [
                "Vamos resolver! Enviei um link de redefinição de senha para o seu e-mail.",
                "Pode me dizer qual a versão do aplicativo e o modelo do celular?",
                "Já estamos cientes do problema e a correção sai ainda hoje.",
            ],
            "follow": [
                "Funcionou, obrigado!",
                "O link expirou, pode mandar outro?",
                "É um Android, versão 14.",
            ],
        },
    ],
    "en": [
        {
            "ask": [
                "Hi, I'd like to know more about the premium plan.",
                "Hello! How much is the premium plan per month?",
                "Does the premium plan include 24/7 support?",
            ],
            "answer": [
                "Hi! Premium is $9.90 a month and includes round-the-clock support.",
                "Sure, I can send you the price list right here.",
                "Premium has a 12-month term and the first month is free.",
            ],
            "follow": [
                "How do I sign up?",
                "Is there a discount on the yearly plan?",
                "Can I cancel at any time?",
            ],
        },
        {
            "ask": [
                "My order {n} hasn't arrived yet, can you check?",
                "When will order {n} be delivered?",
                "The tracking for order {n} hasn't moved since yesterday.",
            ],
            "answer": [
                "I checked: order {n} went out for delivery this morning.",
                "Sorry for the wait! The carrier expects to deliver within 2 business days.",
                "Order {n} is at our distribution centre and ships tomorrow.",
            ],
            "follow": [
                "Can I change the delivery address?",
                "Does someone need to be home to sign for it?",
                "Will you email me the tracking code?",
            ],
        },
        {
            "ask": [
                "I want to cancel my subscription.",
                "I was charged twice on invoice {n}, can you look into it?",
                "Could you resend invoice {n}?",
            ],
            "answer": [
                "I understand. Could you confirm the account holder's email address?",
                "I've opened a refund request; it takes up to 5 business days.",
                "I've sent the invoice to the email on your account.",
            ],
            "follow": [
                "Thanks, I'll wait.",
                "Is there a cancellation fee?",
                "Could you send it here as well?",
            ],
        },
        {
            "ask": [
                "I can't log in to my account, I forgot my password.",
                "The app crashes when I open the cart.",
                "I get an error message at checkout.",
            ],
            "answer": [
                "Let's fix that! I've emailed you a password reset link.",
                "Which app version and phone model are you using?",
                "We're aware of the issue and a fix ships today.",
            ],
            "follow": [
                "That worked, thank you!",
                "The link expired, can you send another one?",
                "It's an Android phone, version 14.",
            ],
        },
    ],
}

_GREETING = {"pt": ["Olá!", "Oi, tudo bem?", "Bom dia!"], "en": ["Hi!", "Hello there.", "Hey!"]}
_THANKS = {
    "pt": ["Muito obrigado!", "Valeu, resolvido.", "Obrigada pela ajuda!"],
    "en": ["Thanks a lot!", "Great, that solves it.", "Thank you for your help!"],
}
_GOODBYE = {
    "pt": ["Por nada! Qualquer dúvida, estamos por aqui.", "Disponha! Tenha um ótimo dia."],
    "en": ["You're welcome! We're here if you need anything.", "Happy to help, have a nice day."],
}

LANGUAGES = tuple(_TOPICS)

RECEIVED = "RECEIVED"  # from the customer
SENT = "SENT"  # by the business


@dataclass(frozen=True)
class ScriptedMessage:
    direction: str
    content: str


def conversation_lines(rng: random.Random, *, language: str | None = None) -> list[ScriptedMessage]:
    """One conversation's messages, customer first, alternating turns with the business."""
    language = language or rng.choice(LANGUAGES)
    topic = rng.choice(_TOPICS[language])
    number = str(rng.randint(10000, 99999))

    def pick(options: list[str]) -> str:
        return rng.choice(options).format(n=number)

    lines = []
    if rng.random() < 0.3:
        lines.append(ScriptedMessage(RECEIVED, pick(_GREETING[language])))
    lines.append(ScriptedMessage(RECEIVED, pick(topic["ask"])))
    lines.append(ScriptedMessage(SENT, pick(topic["answer"])))
    for _ in range(rng.randint(0, 2)):
        lines.append(ScriptedMessage(RECEIVED, pick(topic["follow"])))
        lines.append(ScriptedMessage(SENT, pick(topic["answer"])))
    lines.append(ScriptedMessage(RECEIVED, pick(_THANKS[language])))
    lines.append(ScriptedMessage(SENT, pick(_GOODBYE[language])))
    return lines


def message_text(rng: random.Random, direction: str) -> str:
    """One plausible message for a direction, without building a whole conversation."""
    language = rng.choice(LANGUAGES)
    topic = rng.choice(_TOPICS[language])
    options = topic["ask"] + topic["follow"] if direction == RECEIVED else topic["answer"]
    return rng.choice(options).format(n=rng.randint(10000, 99999))


# The simulated customers' names: accents, a compound name, an emoji, as WhatsApp profiles are.
_FIRST_NAMES = [
    "Ana",
    "João",
    "Maria",
    "José",
    "Luíza",
    "Conceição",
    "Antônio",
    "Beatriz",
    "Raimundo",
    "Letícia",
    "Zé",
    "Mariana 🌻",
    "Thiago",
    "Débora",
    "Sérgio",
]
_LAST_NAMES = [
    "Silva",
    "Conceição",
    "Gonçalves",
    "Araújo",
    "Souza",
    "Pereira",
    "Lima",
    "Brandão",
    "da Costa",
    "Assunção",
    "Ribeiro",
    "Fernandes",
]
# Valid Brazilian mobile numbers (São Paulo, Rio, Belo Horizonte, Salvador, Recife).
_AREA_CODES = ["11", "21", "31", "71", "81"]


def customer(seed: object) -> dict[str, str]:
    """A customer's contact (`{"name", "phone"}`, the phone in E.164), drawn from its own
    random stream: giving conversations contacts shifts no other random choice."""
    rng = random.Random(str(seed))  # noqa: S311 - sample data
    name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    phone = f"+55{rng.choice(_AREA_CODES)}9{rng.randint(60000000, 99999999)}"
    return {"name": name, "phone": phone}


def conversation_events(
    rng: random.Random, *, start: datetime, close: bool = True, gap_seconds: float = 30.0
) -> list[dict]:
    """The provider's events for one conversation, as the JSON the webhook takes.

    Timestamps start at `start` and grow by a random gap of up to `gap_seconds`, so the
    thread reads in order whatever the delivery order.
    """
    conversation_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    when = start
    events: list[dict] = [
        {
            "type": "NEW_CONVERSATION",
            "timestamp": when.isoformat(),
            "data": {"id": conversation_id, "contact": customer(conversation_id)},
        }
    ]
    for line in conversation_lines(rng):
        when += timedelta(seconds=rng.uniform(1.0, gap_seconds))
        events.append(
            {
                "type": "NEW_MESSAGE",
                "timestamp": when.isoformat(),
                "data": {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "direction": line.direction,
                    "content": line.content,
                    "conversation_id": conversation_id,
                },
            }
        )
    if close:
        when += timedelta(seconds=rng.uniform(1.0, gap_seconds))
        events.append(
            {
                "type": "CLOSE_CONVERSATION",
                "timestamp": when.isoformat(),
                "data": {"id": conversation_id},
            }
        )
    return events


def customer_answer(rng: random.Random, reply: str) -> str:
    """What the simulated customer writes back to an agent's reply, in the reply's language."""
    lowered = reply.lower()
    portuguese = any(mark in lowered for mark in "ãõçáéíóúâêô") or any(
        word in lowered.split() for word in ("olá", "oi", "obrigado", "obrigada", "você", "sim")
    )
    language = "pt" if portuguese else "en"
    if rng.random() < 0.3:
        return rng.choice(_THANKS[language])
    topic = rng.choice(_TOPICS[language])
    return rng.choice(topic["follow"]).format(n=rng.randint(10000, 99999))


class DemoProvider:
    """The provider's side of replies, for the demo (README "See it live: `make demo`").

    Serves `PROVIDER_URL` on this machine: takes the inbox's signed `SEND_MESSAGE` like a
    provider (401 for a bad signature, 400 for what is not a SEND_MESSAGE, 409 for an id it
    already took, 200 otherwise), then, as a phone would, reports the reply `DELIVERED` and
    `READ` to the inbox's webhook a moment later and has the customer answer it. `deliver`
    posts one event to the webhook and returns its status; it is called from timer threads.
    """

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        deliver: Callable[[dict], int],
        rng: random.Random,
        delivered_after: float = 1.0,
        read_after: float = 2.5,
        answer_after: float = 4.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the demo provider serves http://host:port/path, not {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path or "/"
        self.secret = secret
        self.deliver = deliver
        self.rng = rng
        self.delays = (delivered_after, read_after, answer_after)
        self.taken: set[str] = set()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.timers: list[threading.Timer] = []

    def start(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = provider.take(self.path, dict(self.headers.items()), body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the simulator prints its own summary

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def take(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        """One SEND_MESSAGE request: the status and JSON body to answer it with."""
        if path.split("?")[0] != self.path:
            return 404, {"error": f"no such path {path}"}
        if self.secret:
            expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            given = {k.lower(): v for k, v in headers.items()}.get("x-hub-signature-256", "")
            if not hmac.compare_digest(given.lower(), expected):
                return 401, {"error": "X-Hub-Signature-256 is missing or wrong"}
        try:
            event = json.loads(body)
            data = event["data"]
            message_id, conversation_id = str(data["id"]), str(data["conversation_id"])
            content = str(data["content"])
        except (ValueError, KeyError, TypeError):
            return 400, {"error": "expected a SEND_MESSAGE event with data.id, conversation_id"}
        if event.get("type") != "SEND_MESSAGE":
            return 400, {"error": f"unknown type {event.get('type')!r}"}
        with self.lock:
            if message_id in self.taken:
                return 409, {"error": "already taken", "id": message_id}
            self.taken.add(message_id)
            answer = customer_answer(self.rng, content)
        delivered, read, answered = self.delays
        self._later(delivered, _status_event(message_id, "DELIVERED"))
        self._later(read, _status_event(message_id, "READ"))
        self._later(answered, _customer_event(conversation_id, answer))
        return 200, {"id": message_id, "status": "accepted"}

    def _later(self, delay: float, event_factory: Callable[[], dict]) -> None:
        def send() -> None:
            # The inbox is down: a phone's status report is lost, as in life.
            with contextlib.suppress(OSError):
                self.deliver(event_factory())

        timer = threading.Timer(delay, send)
        timer.daemon = True
        self.timers = [t for t in self.timers if t.is_alive()] + [timer]
        timer.start()


def _status_event(message_id: str, status: str) -> Callable[[], dict]:
    return lambda: {
        "type": "MESSAGE_STATUS",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"id": message_id, "status": status},
    }


def _customer_event(conversation_id: str, content: str) -> Callable[[], dict]:
    return lambda: {
        "type": "NEW_MESSAGE",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "id": str(uuid.uuid4()),
            "direction": RECEIVED,
            "content": content,
            "conversation_id": conversation_id,
        },
    }
