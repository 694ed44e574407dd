"""Realistic conversations, in Portuguese and English, for the demo, the seeder and the bench.

A conversation is a customer writing about one topic, the business answering, a few turns,
a thanks and a close. Everything is drawn from a `random.Random` the caller owns, so a
seed reproduces the same traffic.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

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
