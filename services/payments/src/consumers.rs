//! What the payments service consumes from the bus.

use std::sync::Arc;

use bus::ConsumerOptions;
use platform::tokio_util::sync::CancellationToken;
use platform::ServiceContext;
use tokio::task::JoinHandle;

use crate::domain::debits;

/// Starts every consumer of the service.
pub fn spawn(ctx: &ServiceContext, cancel: CancellationToken) -> Vec<JoinHandle<()>> {
    let def = contracts::meals::DEBITS_QUEUE;
    let opts = ConsumerOptions::new(
        "payments.meal-debits",
        ctx.bus.queue_spec(def.queue, def.bindings),
    );
    let handler = MealDebitHandler {
        clock: ctx.clock.clone(),
    };
    let mut tasks = bus::spawn_consumer(&ctx.bus, opts, Arc::new(handler), cancel.clone());
    let def = contracts::meals::ACCOUNTS_QUEUE;
    let opts = ConsumerOptions::new(
        "payments.meal-accounts",
        ctx.bus.queue_spec(def.queue, def.bindings),
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
        ctx.bus.queue_spec(def.queue, def.bindings),
    );
    tasks.extend(bus::spawn_responder(
        &ctx.bus,
        opts,
        Arc::new(crate::banks::BankResponder {
            clock: ctx.clock.clone(),
        }),
        cancel.clone(),
    ));
    let def = contracts::gateway::REGISTRY_DELIVERIES;
    let opts = ConsumerOptions::new(
        "payments.registry-deliveries",
        ctx.bus.queue_spec(def.queue, def.bindings),
    );
    tasks.extend(bus::spawn_consumer(
        &ctx.bus,
        opts,
        Arc::new(crate::registry::delivered::DeliveryHandler {
            clock: ctx.clock.clone(),
        }),
        cancel.clone(),
    ));
    let def = contracts::payments::REGISTRY_QUERIES;
    let opts = ConsumerOptions::new(
        "payments.registry-queries",
        ctx.bus.queue_spec(def.queue, def.bindings),
    );
    tasks.extend(bus::spawn_responder(
        &ctx.bus,
        opts,
        Arc::new(crate::registry::delivered::QueryResponder),
        cancel.clone(),
    ));
    let def = contracts::gateway::PAYMENTS_CALLS;
    let opts = ConsumerOptions::new(
        "payments.gateway-calls",
        ctx.bus.queue_spec(def.queue, def.bindings),
    );
    let clock = ctx.clock.clone();
    tasks.extend(bus::spawn_responder(
        &ctx.bus,
        opts,
        Arc::new(platform::calls::CallResponder(Box::new(
            move |conn, call| crate::api::charges::gateway_call(conn, call, clock.as_ref()),
        ))),
        cancel.clone(),
    ));
    tasks.push(crate::registry::delivered::spawn_importer(
        ctx.clone(),
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
                &opened.class_id,
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
                    active: true,
                    created_at: self.clock.now().naive_utc(),
                    class_id: opened.class_id,
                },
            )
            .map_err(to_handler),
        }
    }
}

/// Writes off meal debits (idempotent by the debit's key) and answers each with
/// a `DebitResult` event. A batch is written off at once: its rows locked in
/// one order ([`bus::Handler::lock_batch`]), its accounts, balances and earlier
/// keys read in one statement each, every debit judged on the balance the
/// previous ones left, and all movements posted with one `post_many`.
pub struct MealDebitHandler {
    pub clock: Arc<dyn calendar::Clock>,
}

impl bus::Handler for MealDebitHandler {
    fn handle(
        &self,
        conn: &mut storage::DbConnection,
        message: &bus::Envelope,
    ) -> Result<(), bus::HandlerError> {
        self.handle_batch(conn, &[message])
    }

    fn handle_batch(
        &self,
        conn: &mut storage::DbConnection,
        messages: &[&bus::Envelope],
    ) -> Result<(), bus::HandlerError> {
        use contracts::meals::DebitRequested;

        let requests = messages
            .iter()
            .map(|m| m.decode::<DebitRequested>())
            .collect::<Result<Vec<_>, _>>()?;
        let results = write_off(conn, &requests, self.clock.now().naive_utc())?;
        let mut events = Vec::with_capacity(results.len());
        for (request, result) in requests.iter().zip(&results) {
            if let Some(reason) = &result.reason {
                tracing::warn!(key = %request.key, account = %request.account, reason, "meal debit refused");
            }
            events.push(
                crate::events::debit_result(result)
                    .map_err(|e| bus::HandlerError::Permanent(e.to_string()))?,
            );
        }
        bus::store::enqueue_all(conn, &events)?;
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
        let requests: Vec<contracts::meals::DebitRequested> =
            messages.iter().filter_map(|m| m.decode().ok()).collect();
        let shared = open_shared_accounts(conn, &requests, self.clock.now().naive_utc())?;
        let ids: Vec<&str> = requests
            .iter()
            .map(|r| r.account.as_str())
            .chain(shared.iter().map(String::as_str))
            .collect();
        crate::store::lock_balances(conn, &ids).map_err(transient)
    }
}

fn transient(e: crate::store::StoreError) -> bus::HandlerError {
    bus::HandlerError::Transient(e.to_string())
}

/// Opens the settlement and budget accounts `requests` post to, in order;
/// answers their ids.
fn open_shared_accounts(
    conn: &mut storage::DbConnection,
    requests: &[contracts::meals::DebitRequested],
    at: chrono::NaiveDateTime,
) -> Result<Vec<String>, bus::HandlerError> {
    use crate::domain::ledger::AccountKind;
    use crate::store::{self, system};
    let mut shared = std::collections::BTreeMap::new();
    for r in requests {
        shared.insert(
            system::settlement(&r.organizer),
            AccountKind::OrganizerSettlement,
        );
        shared.insert(system::budget(&r.municipality), AccountKind::Budget);
    }
    for (id, kind) in &shared {
        store::ensure_system_account(conn, id, *kind, at).map_err(transient)?;
    }
    Ok(shared.into_keys().collect())
}

/// Writes off `requests` in order, each on the balance the ones before it
/// left, and answers one result per request. A debit written off before (by
/// its key, in an earlier batch or earlier in this one) answers with the first
/// movement and takes no money again.
fn write_off(
    conn: &mut storage::DbConnection,
    requests: &[contracts::meals::DebitRequested],
    at: chrono::NaiveDateTime,
) -> Result<Vec<contracts::payments::DebitResult>, bus::HandlerError> {
    use crate::domain::ledger::AccountKind;
    use crate::store::{self, system};
    use contracts::payments::DebitResult;
    use primitives::Money;
    use std::collections::HashMap;

    open_shared_accounts(conn, requests, at)?;
    let keys: Vec<String> = requests
        .iter()
        .map(|r| format!("meal-debit:{}", r.key))
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let posted_before = store::movements_by_key(conn, &key_refs).map_err(transient)?;
    let mut ids: Vec<&str> = requests.iter().map(|r| r.account.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let accounts = store::find_accounts(conn, &ids).map_err(transient)?;
    // The rows are locked (lock_batch), so these balances stay true.
    let mut running = store::balances_of(conn, &ids).map_err(transient)?;

    let mut results: Vec<DebitResult> = Vec::with_capacity(requests.len());
    let mut movements = Vec::new();
    // Index of the first request of each key in this batch.
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, (request, key)) in requests.iter().zip(&keys).enumerate() {
        let balance = running
            .get(&request.account)
            .copied()
            .unwrap_or(Money::ZERO);
        let mut result = DebitResult {
            key: request.key.clone(),
            account: request.account.clone(),
            accepted: false,
            reason: None,
            balance,
            movement_id: None,
        };
        if let Some(id) = posted_before.get(key) {
            result.accepted = true;
            result.movement_id = Some(id.clone());
            results.push(result);
            continue;
        }
        if let Some(&first) = first_of.get(key.as_str()) {
            // Answered below with the first one's outcome.
            results.push(DebitResult {
                balance,
                ..results[first].clone()
            });
            continue;
        }
        first_of.insert(key, i);
        let refusal = match accounts.get(&request.account) {
            None => Some(debits::Refusal::UnknownAccount(request.account.clone())),
            Some(a) if !a.active || a.kind() != Some(AccountKind::Personal) => {
                Some(debits::Refusal::Inactive(a.id.clone()))
            }
            Some(_) => debits::check(balance, request.amount, request.credit_limit).err(),
        };
        if let Some(refusal) = refusal {
            result.reason = Some(refusal.to_string());
            results.push(result);
            continue;
        }
        let reason = format!("{} {} meal", request.date, request.meal_time);
        let movement = debits::movement(
            &request.account,
            &system::settlement(&request.organizer),
            &system::budget(&request.municipality),
            request.amount,
            request.reimbursed,
            &reason,
        )
        .map_err(|e| bus::HandlerError::Permanent(e.to_string()))?;
        let after = balance - request.amount;
        running.insert(request.account.clone(), after);
        result.accepted = true;
        result.balance = after;
        if let Some(m) = movement {
            movements.push((i, m));
        }
        results.push(result);
    }

    let entries: Vec<store::Entry<'_>> = movements
        .iter()
        .map(|(i, m)| store::Entry {
            movement: m,
            key: &keys[*i],
            reverses: None,
            at,
            trace: None,
        })
        .collect();
    let posted = store::post_many(conn, &entries).map_err(transient)?;
    for ((i, _), outcome) in movements.iter().zip(posted) {
        results[*i].movement_id = Some(outcome.map_err(transient)?.movement_id);
    }
    // A repeat within the batch answers the first one's movement.
    for (i, key) in keys.iter().enumerate() {
        if let Some(&first) = first_of.get(key.as_str()) {
            if first != i && !posted_before.contains_key(key) {
                results[i].movement_id = results[first].movement_id.clone();
            }
        }
    }
    Ok(results)
}
