//! What the payments service consumes from the bus.

use std::sync::Arc;

use bus::{ConsumerOptions, QueueSpec};
use platform::tokio_util::sync::CancellationToken;
use platform::ServiceContext;
use tokio::task::JoinHandle;

use crate::domain::debits;

/// Starts every consumer of the service.
pub fn spawn(ctx: &ServiceContext, cancel: CancellationToken) -> Vec<JoinHandle<()>> {
    let def = contracts::meals::DEBITS_QUEUE;
    let opts = ConsumerOptions::new(
        "payments.meal-debits",
        QueueSpec::new(def.queue, def.bindings),
    );
    let handler = MealDebitHandler {
        clock: ctx.clock.clone(),
    };
    let mut tasks = bus::spawn_consumer(&ctx.bus, opts, Arc::new(handler), cancel.clone());
    let def = contracts::meals::ACCOUNTS_QUEUE;
    let opts = ConsumerOptions::new(
        "payments.meal-accounts",
        QueueSpec::new(def.queue, def.bindings),
    );
    tasks.extend(bus::spawn_consumer(
        &ctx.bus,
        opts,
        Arc::new(AccountOpenedHandler {
            clock: ctx.clock.clone(),
        }),
        cancel.clone(),
    ));
    let def = contracts::payments::BANK_REQUESTS;
    let opts = ConsumerOptions::new(
        "payments.bank-requests",
        QueueSpec::new(def.queue, def.bindings),
    );
    tasks.extend(bus::spawn_responder(
        &ctx.bus,
        opts,
        Arc::new(crate::banks::BankResponder {
            clock: ctx.clock.clone(),
        }),
        cancel,
    ));
    tasks
}

/// Opens the personal accounts the meals service registers; a student already
/// known gets the school, class and organizer the meals service sent last.
pub struct AccountOpenedHandler {
    pub clock: Arc<dyn calendar::Clock>,
}

impl bus::Handler for AccountOpenedHandler {
    fn handle(
        &self,
        conn: &mut storage::DbConnection,
        message: &bus::Envelope,
    ) -> Result<(), bus::HandlerError> {
        use crate::domain::ledger::{is_account_id, AccountKind};
        use crate::store::{self, NewAccount};
        let opened: contracts::meals::AccountOpened = message.decode()?;
        if !is_account_id(&opened.account) {
            return Err(bus::HandlerError::Permanent(format!(
                "{:?} is not an account id",
                opened.account
            )));
        }
        let to_handler = |e: store::StoreError| bus::HandlerError::Transient(e.to_string());
        match store::find_account(conn, &opened.account).map_err(to_handler)? {
            Some(existing) if existing.kind() != Some(AccountKind::Personal) => Err(
                bus::HandlerError::Permanent(format!("{} is a system account", opened.account)),
            ),
            Some(_) => store::update_account_owner(
                conn,
                &opened.account,
                &opened.student_name,
                &opened.school,
                &opened.class_name,
                &opened.organizer,
            )
            .map_err(to_handler),
            None => store::open_account(
                conn,
                &NewAccount {
                    id: opened.account,
                    kind: AccountKind::Personal.as_str().into(),
                    purpose: "meals".into(),
                    student_name: opened.student_name,
                    school: opened.school,
                    class_name: opened.class_name,
                    municipality: opened.municipality,
                    organizer: opened.organizer,
                    active: 1,
                    created_at: self.clock.now().naive_utc(),
                },
            )
            .map_err(to_handler),
        }
    }
}

/// Writes off meal debits (idempotent by the debit's key) and answers each with
/// a `DebitResult` event.
pub struct MealDebitHandler {
    pub clock: Arc<dyn calendar::Clock>,
}

impl bus::Handler for MealDebitHandler {
    fn handle(
        &self,
        conn: &mut storage::DbConnection,
        message: &bus::Envelope,
    ) -> Result<(), bus::HandlerError> {
        use contracts::meals::DebitRequested;
        use contracts::payments::DebitResult;
        use contracts::Contract;

        let request: DebitRequested = message.decode()?;
        let result = write_off(conn, &request, self.clock.now().naive_utc())?;
        if let Some(reason) = &result.reason {
            tracing::warn!(key = %request.key, account = %request.account, reason, "meal debit refused");
        }
        let event = bus::Envelope::json(DebitResult::TOPIC, DebitResult::KIND, &result)
            .map_err(|e| bus::HandlerError::Permanent(e.to_string()))?;
        bus::store::enqueue(conn, &event)?;
        Ok(())
    }

    /// Every debit of a batch moves money between its personal account and the
    /// same few settlement and budget accounts. Taken one debit at a time, a
    /// batch would hold the shared accounts while waiting for a personal one
    /// another batch holds, and that batch wait for the shared ones: a
    /// deadlock. So the batch's system accounts are opened first (in order),
    /// then all its balance rows are locked in one statement, in account order.
    fn lock_batch(
        &self,
        conn: &mut storage::DbConnection,
        messages: &[&bus::Envelope],
    ) -> Result<(), bus::HandlerError> {
        use crate::domain::ledger::AccountKind;
        use crate::store::{self, system};
        use std::collections::BTreeMap;

        let to_handler = |e: store::StoreError| bus::HandlerError::Transient(e.to_string());
        let mut shared: BTreeMap<String, AccountKind> = BTreeMap::new();
        let mut accounts: Vec<String> = Vec::with_capacity(messages.len());
        for message in messages {
            let Ok(request) = message.decode::<contracts::meals::DebitRequested>() else {
                continue;
            };
            shared.insert(
                system::settlement(&request.organizer),
                AccountKind::OrganizerSettlement,
            );
            shared.insert(system::budget(&request.municipality), AccountKind::Budget);
            accounts.push(request.account);
        }
        for (id, kind) in &shared {
            store::ensure_system_account(conn, id, *kind).map_err(to_handler)?;
        }
        let ids: Vec<&str> = accounts
            .iter()
            .chain(shared.keys())
            .map(String::as_str)
            .collect();
        store::lock_balances(conn, &ids).map_err(to_handler)
    }
}

fn write_off(
    conn: &mut storage::DbConnection,
    request: &contracts::meals::DebitRequested,
    at: chrono::NaiveDateTime,
) -> Result<contracts::payments::DebitResult, bus::HandlerError> {
    use crate::domain::ledger::AccountKind;
    use crate::store::{self, system};

    let key = format!("meal-debit:{}", request.key);
    let refused = |reason: String, balance: primitives::Money| contracts::payments::DebitResult {
        key: request.key.clone(),
        account: request.account.clone(),
        accepted: false,
        reason: Some(reason),
        balance,
        movement_id: None,
    };
    let to_handler = |e: store::StoreError| bus::HandlerError::Transient(e.to_string());

    // A repeat of a debit already written off answers with the first result.
    if let Some(movement_id) = store::movement_by_key(conn, &key).map_err(to_handler)? {
        let balance = store::balance(conn, &request.account).map_err(to_handler)?;
        return Ok(contracts::payments::DebitResult {
            key: request.key.clone(),
            account: request.account.clone(),
            accepted: true,
            reason: None,
            balance,
            movement_id: Some(movement_id),
        });
    }
    let Some(account) = store::find_account(conn, &request.account).map_err(to_handler)? else {
        return Ok(refused(
            debits::Refusal::UnknownAccount(request.account.clone()).to_string(),
            primitives::Money::ZERO,
        ));
    };
    let balance = store::balance(conn, &account.id).map_err(to_handler)?;
    if account.active != 1 || account.kind() != Some(AccountKind::Personal) {
        return Ok(refused(
            debits::Refusal::Inactive(account.id.clone()).to_string(),
            balance,
        ));
    }
    if let Err(refusal) = debits::check(balance, request.amount, request.credit_limit) {
        return Ok(refused(refusal.to_string(), balance));
    }
    // The check above read a balance that may be stale; this one locks the row.
    if !store::lock_for_debit(conn, &account.id, request.amount, request.credit_limit)
        .map_err(to_handler)?
    {
        let now = store::balance(conn, &account.id).map_err(to_handler)?;
        let refusal = debits::Refusal::OverCreditLimit {
            balance: now,
            amount: request.amount,
            limit: request.credit_limit,
        };
        return Ok(refused(refusal.to_string(), now));
    }
    let settlement = system::settlement(&request.organizer);
    let budget = system::budget(&request.municipality);
    store::ensure_system_account(conn, &settlement, AccountKind::OrganizerSettlement)
        .map_err(to_handler)?;
    store::ensure_system_account(conn, &budget, AccountKind::Budget).map_err(to_handler)?;
    let reason = format!("{} {} meal", request.date, request.meal_time);
    let movement = debits::movement(
        &account.id,
        &settlement,
        &budget,
        request.amount,
        request.reimbursed,
        &reason,
    )
    .map_err(|e| bus::HandlerError::Permanent(e.to_string()))?;
    let movement_id = match movement {
        Some(m) => Some(
            store::post(conn, &m, &key, None, at)
                .map_err(to_handler)?
                .movement_id,
        ),
        None => None,
    };
    let balance = store::balance(conn, &account.id).map_err(to_handler)?;
    Ok(contracts::payments::DebitResult {
        key: request.key.clone(),
        account: account.id,
        accepted: true,
        reason: None,
        balance,
        movement_id,
    })
}
