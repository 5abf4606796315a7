//! The pages' words: pt-BR by default, English with `?lang=en` or the `eaibus_lang` cookie.

use crate::monitor::{Situation, Stage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Pt,
    En,
}

impl Lang {
    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "pt" | "pt-br" | "pt_br" => Some(Lang::Pt),
            "en" | "en-us" | "en_us" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Pt => "pt-BR",
            Lang::En => "en",
        }
    }

    /// The text of `key` in this language (the key itself when unknown).
    pub fn t(self, key: &'static str) -> &'static str {
        let pair = WORDS.iter().find(|(k, _, _)| *k == key);
        match (self, pair) {
            (Lang::Pt, Some((_, pt, _))) => pt,
            (Lang::En, Some((_, _, en))) => en,
            (_, None) => key,
        }
    }

    pub fn situation(self, s: Situation) -> &'static str {
        match self {
            Lang::Pt => s.label(),
            Lang::En => match s {
                Situation::AguardandoExecucao => "Waiting",
                Situation::Executando => "Running",
                Situation::Finalizada => "Finished",
                Situation::Falhou => "Failed",
                Situation::Bloqueado => "Blocked",
                Situation::NaoEntregue => "Not delivered",
                Situation::Recusada => "Refused",
            },
        }
    }

    pub fn stage(self, s: Stage) -> &'static str {
        match self {
            Lang::Pt => s.label(),
            Lang::En => match s {
                Stage::Received => "Received",
                Stage::Validated => "Validated",
                Stage::Routed => "Routed",
                Stage::Mapped => "De/Para applied",
                Stage::Logged => "Written to the log",
                Stage::Delivering => "Delivering",
                Stage::Delivered => "Delivered",
                Stage::Failed => "Delivery failed",
                Stage::Refused => "Refused",
                Stage::Parked => "Parked",
                Stage::Dlq => "Sent to the DLQ",
            },
        }
    }
}

/// (key, pt-BR, English)
const WORDS: &[(&str, &str, &str)] = &[
    ("messages", "Mensagens", "Messages"),
    ("dashboard", "Painel", "Dashboard"),
    ("depara", "De/Para", "De/Para"),
    ("audit", "Auditoria", "Audit"),
    ("logout", "Sair", "Log out"),
    ("login", "Entrar", "Log in"),
    ("username", "Usuário", "User"),
    ("password", "Senha", "Password"),
    (
        "login_failed",
        "Usuário ou senha inválidos.",
        "Wrong user or password.",
    ),
    ("identifier", "Identificador", "Identifier"),
    ("integration", "Integração", "Integration"),
    ("situation", "Situação", "Situation"),
    ("component", "Componente", "Component"),
    ("received_at", "Recebido em", "Received at"),
    ("actions", "Ações", "Actions"),
    ("view", "ver", "view"),
    ("reprocess", "reprocessar", "reprocess"),
    ("export", "exportar payload", "export payload"),
    ("resolve", "marcar como resolvido", "mark as resolved"),
    ("resolved", "Resolvido", "Resolved"),
    ("all", "Todas", "All"),
    ("transaction", "Transação", "Transaction"),
    ("route", "Rota", "Route"),
    ("from", "De", "From"),
    ("to", "Até", "To"),
    ("search", "UUIDs ou InternalIds", "UUIDs or InternalIds"),
    ("filter", "Filtrar", "Filter"),
    ("previous", "Anterior", "Previous"),
    ("next", "Próxima", "Next"),
    ("page", "Página", "Page"),
    ("of", "de", "of"),
    ("total", "Total", "Total"),
    (
        "reprocess_selected",
        "Reprocessar selecionadas",
        "Reprocess selected",
    ),
    (
        "confirm_reprocess",
        "Reprocessar as mensagens selecionadas?",
        "Reprocess the selected messages?",
    ),
    (
        "confirm_one",
        "Reprocessar esta mensagem?",
        "Reprocess this message?",
    ),
    (
        "confirm_resolve",
        "Marcar esta mensagem como resolvida?",
        "Mark this message as resolved?",
    ),
    (
        "confirm_delete",
        "Excluir este par De/Para?",
        "Delete this De/Para pair?",
    ),
    ("timeline", "Linha do tempo", "Timeline"),
    ("attempt", "Tentativa", "Attempt"),
    ("error", "Erro", "Error"),
    ("detail", "Detalhe", "Detail"),
    (
        "payload_received",
        "Payload recebido",
        "Payload as received",
    ),
    ("payload_canonical", "JSON canônico", "Canonical JSON"),
    ("response", "Resposta recebida", "Response received"),
    (
        "answer",
        "Resposta enviada ao remetente",
        "Answer sent to the sender",
    ),
    ("learned", "De/Para criados", "De/Para pairs created"),
    ("deliveries", "Entregas", "Deliveries"),
    ("repeated_failures", "Falhas repetidas", "Repeated failures"),
    ("reveal", "revelar dados pessoais", "reveal personal data"),
    (
        "masked_note",
        "Dados pessoais mascarados (LGPD).",
        "Personal data masked (LGPD).",
    ),
    (
        "active_integrations",
        "Integrações ativas",
        "Active integrations",
    ),
    ("last_sync", "Última sincronização", "Last successful sync"),
    (
        "errors_24h",
        "Erros nas últimas 24 h",
        "Errors in the last 24 h",
    ),
    (
        "synced_month",
        "Itens sincronizados no mês",
        "Items synchronised this month",
    ),
    ("received", "Recebidas", "Received"),
    ("waiting", "Aguardando", "Waiting"),
    ("delivered", "Entregues", "Delivered"),
    ("failed", "Com falha", "Failed"),
    ("parked", "Bloqueadas", "Parked"),
    ("refused", "Recusadas", "Refused"),
    (
        "reload",
        "Recarregar tabela de adapters",
        "Reload the adapter table",
    ),
    ("reference", "Referência", "Reference"),
    ("alias", "Alias", "Alias"),
    ("field", "Campo", "Field"),
    ("external", "Valor externo", "External value"),
    ("internal", "Valor interno", "Internal value"),
    ("save", "Salvar", "Save"),
    ("delete", "excluir", "delete"),
    ("edit", "editar", "edit"),
    ("changes", "Alterações", "Changes"),
    ("when", "Quando", "When"),
    ("who", "Quem", "Who"),
    ("what", "O quê", "What"),
    ("target", "Alvo", "Target"),
    ("none", "Nenhum registro.", "Nothing here."),
    ("done", "Feito", "Done"),
    (
        "later",
        "Logs de sincronização e Pedidos: em breve.",
        "Sync logs and Orders: coming later.",
    ),
];
