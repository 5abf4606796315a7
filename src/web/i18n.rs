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

    /// The words of a sync run's kind, starter or status (`kind_…`, `by_…`, `status_…`).
    pub fn code_word(self, prefix: &str, code: &str) -> &'static str {
        let key = format!("{prefix}_{code}");
        WORDS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("?", |(_, pt, en)| if self == Lang::Pt { pt } else { en })
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
    ("resolved_filter", "Resolvidas", "Resolved"),
    ("yes", "Sim", "Yes"),
    ("no", "Não", "No"),
    ("note", "Nota", "Note"),
    ("note_optional", "nota (opcional)", "note (optional)"),
    ("resolved_by", "Resolvido por", "Resolved by"),
    ("sync_logs", "Logs de sincronização", "Sync logs"),
    ("kind", "Tipo", "Kind"),
    ("started_by", "Iniciado por", "Started by"),
    ("scope", "Escopo", "Scope"),
    ("started_at", "Início", "Started"),
    ("duration", "Duração", "Duration"),
    ("succeeded", "Sucesso", "Succeeded"),
    ("errors", "Erros", "Errors"),
    ("skipped", "Ignorados", "Skipped"),
    ("status", "Status", "Status"),
    ("kind_delivery", "Entrega", "Delivery"),
    ("kind_reprocess", "Reprocessamento", "Reprocess"),
    ("kind_redrive", "Reenvio da DLQ", "DLQ redrive"),
    ("kind_replay", "Replay", "Replay"),
    ("by_schedule", "Agendamento", "Schedule"),
    ("by_manual", "Manual", "Manual"),
    ("by_webhook", "Webhook", "Webhook"),
    ("by_kafka", "Kafka", "Kafka"),
    ("status_running", "Em execução", "Running"),
    ("status_success", "Sucesso", "Success"),
    ("status_partial", "Parcial", "Partial"),
    ("status_error", "Erro", "Error"),
    ("orders", "Pedidos", "Orders"),
    (
        "order_search",
        "Id do pedido OMNI, do pedido Protheus ou da venda",
        "OMNI order id, Protheus order id or sale id",
    ),
    ("search_button", "Buscar", "Search"),
    (
        "order_not_found",
        "Nenhum pedido com este id.",
        "No order has this id.",
    ),
    ("order", "Pedido", "Order"),
    ("customer", "Cliente", "Customer"),
    ("ecommerce_order", "Pedido e-commerce", "E-commerce order"),
    ("company_branch", "Empresa/filial", "Company/branch"),
    ("other_ids", "Outros ids", "Other ids"),
    ("reservations", "Reservas", "Reservations"),
    ("cancellation", "Cancelamento", "Cancellation"),
    ("flows", "Situação por fluxo", "Status per flow"),
    ("flow", "Fluxo", "Flow"),
    ("since", "Desde", "Since"),
    ("protheus_orders", "Pedidos Protheus", "Protheus orders"),
    ("history", "Histórico", "History"),
    ("effect", "Efeito", "Effect"),
    ("previous_status", "Status anterior", "Previous status"),
    ("source", "Origem", "Source"),
    ("invoices", "Notas fiscais", "Invoices"),
    ("number", "Número", "Number"),
    ("series", "Série", "Series"),
    ("access_key", "Chave de acesso", "Access key"),
    ("issue_date", "Emissão", "Issued"),
    ("value", "Valor", "Value"),
    ("updated_at", "Atualizado em", "Updated at"),
    ("users", "Usuários e tokens", "Users and tokens"),
    ("role", "Perfil", "Role"),
    ("disabled", "Desativado", "Disabled"),
    ("active", "Ativo", "Active"),
    ("create_user", "Criar usuário", "Create user"),
    ("change_role", "alterar perfil", "change role"),
    ("disable", "desativar", "disable"),
    ("enable", "reativar", "enable"),
    (
        "confirm_disable",
        "Desativar este usuário?",
        "Disable this user?",
    ),
    ("tokens", "Tokens de API", "API tokens"),
    ("token_name", "Finalidade", "Purpose"),
    ("create_token", "Criar token", "Create token"),
    ("revoke", "revogar", "revoke"),
    (
        "confirm_revoke",
        "Revogar este token?",
        "Revoke this token?",
    ),
    ("created_at", "Criado em", "Created at"),
    (
        "token_once",
        "Copie o token agora: ele não será mostrado de novo.",
        "Copy the token now: it will not be shown again.",
    ),
    (
        "login_throttled",
        "Muitas tentativas de login malsucedidas. Tente novamente em {} minuto(s).",
        "Too many failed logins. Try again in {} minute(s).",
    ),
];
