//! Redis for sessions and refresh families (users stay in the SQL database). Native TTLs
//! replace purge jobs. Every read-modify-write is one Lua script on the Redis server, so it is
//! atomic across any number of sekisho instances. Each script touches one key, and every key
//! carries a `{…}` hash tag, so a family's or a session's data never spans cluster slots.
//!
//! Keys (`P` = `sessions.key_prefix`):
//! * `P:fam:{<family id>}` — hash: the family record; expires with its last token;
//! * `P:ufam:{<user id>}` — set of the user's family ids (for "revoke all");
//! * `P:sess:{<session id hash>}` — hash: the session record; expires at its deadline;
//! * `P:usess:{<user id>}` — set of the user's session id hashes.

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use sekisho_core::account::UserId;
use sekisho_core::clock::Timestamp;
use sekisho_core::family::{FamilyRecord, RevokeOutcome, RotateOutcome, RotateRequest, Successor};
use sekisho_core::mfa::LoginMethod;
use sekisho_core::session::SessionRecord;
use sekisho_core::store::{FamilyStore, SessionStore, StoreError, StoreResult};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

/// `decide_rotation` (sekisho-core) as a server-side script; the shared conformance suite holds
/// both to the same behaviour.
/// KEYS[1] family; ARGV: presented jti, new jti, now (ms), grace (ms), idle lifetime (s), rotate.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local f = redis.call('HGETALL', KEYS[1])
if #f == 0 then return {'notfound'} end
local h = {}
for i = 1, #f, 2 do h[f[i]] = f[i + 1] end
if h.revoked then return {'revoked'} end
local now_ms = tonumber(ARGV[3])
local now_s = math.floor(now_ms / 1000)
local cur_exp = tonumber(h.exp)
local abs = tonumber(h.abs)
if h.cur == ARGV[1] then
  if cur_exp <= now_s or abs <= now_s then return {'expired'} end
  if ARGV[6] == '0' then return {'unchanged', h.cur, h.iat, h.exp} end
  local exp = math.min(now_s + tonumber(ARGV[5]), abs)
  if exp <= now_s then return {'expired'} end
  local iat_s = string.format('%d', now_s)
  local exp_s = string.format('%d', exp)
  redis.call('HSET', KEYS[1], 'prev', h.cur, 'rot', ARGV[3], 'cur', ARGV[2], 'iat', iat_s, 'exp', exp_s)
  redis.call('EXPIREAT', KEYS[1], exp + 1)
  return {'rotated', ARGV[2], iat_s, exp_s}
end
local grace = tonumber(ARGV[4])
if grace > 0 and h.prev == ARGV[1] and h.rot and now_ms <= tonumber(h.rot) + grace then
  if cur_exp <= now_s then return {'expired'} end
  return {'grace', h.cur, h.iat, h.exp}
end
redis.call('HSET', KEYS[1], 'revoked', ARGV[3], 'reason', 'reuse')
return {'reuse'}
"#,
    )
});

/// KEYS[1] family; ARGV: expire-at (s), then field/value pairs. Creates only if absent.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
"#,
    )
});

/// KEYS[1] family; ARGV: now (ms), reason.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 'notfound' end
if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return 'already' end
redis.call('HSET', KEYS[1], 'revoked', ARGV[1], 'reason', ARGV[2])
return 'revoked'
"#,
    )
});

/// KEYS[1] session; ARGV: now (ms), new idle deadline (ms), only if last seen before (ms).
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local seen = redis.call('HGET', KEYS[1], 'seen')
if not seen or tonumber(seen) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'idle', ARGV[2])
local abs = tonumber(redis.call('HGET', KEYS[1], 'abs'))
local idle = tonumber(ARGV[2])
if abs < idle then idle = abs end
redis.call('PEXPIREAT', KEYS[1], idle)
return 1
"#,
    )
});

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    deadline: Duration,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// Whether a command may be sent again after the connection broke under it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    Never,
}

/// The connection broke (or could not be made): the command may not have reached Redis, and the
/// connection manager has started a new connection for the next attempt.
fn connection_lost(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error()
}

impl RedisStore {
    /// Connects to a `redis://` (or `rediss://`) URL. The connection manager reconnects by
    /// itself after an outage; every call is bounded by `deadline` and fails closed meanwhile.
    pub async fn connect(url: &str, prefix: &str, deadline: Duration) -> StoreResult<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("sessions.store: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(deadline))
            .set_response_timeout(Some(deadline))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn =
            tokio::time::timeout(deadline, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| StoreError::Unavailable("redis: connect timed out".into()))?
                .map_err(unavailable)?;
        Ok(RedisStore {
            conn,
            prefix: prefix.to_string(),
            deadline,
        })
    }

    fn family_key(&self, id: &str) -> String {
        format!("{}:fam:{{{id}}}", self.prefix)
    }
    fn user_families_key(&self, user: UserId) -> String {
        format!("{}:ufam:{{{user}}}", self.prefix)
    }
    fn session_key(&self, hash: &str) -> String {
        format!("{}:sess:{{{hash}}}", self.prefix)
    }
    fn user_sessions_key(&self, user: UserId) -> String {
        format!("{}:usess:{{{user}}}", self.prefix)
    }

    /// Runs one command (all under one deadline). When it fails because the connection broke —
    /// Redis restarted, or the socket died while idle — the connection manager re-establishes
    /// it, and a command whose repetition is harmless (`repeat`) is sent once more on the new
    /// connection, so the first request after an outage is not lost. Returns whether it was
    /// repeated (a repeated write may find its own first attempt already applied).
    async fn call<T, F, Fut>(&self, repeat: Repeat, f: F) -> StoreResult<(T, bool)>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempts = async {
            match f(self.conn.clone()).await {
                Err(e) if repeat == Repeat::Safe && connection_lost(&e) => {
                    tracing::info!(error = %e, "redis connection lost; sending the command again on a new connection");
                    metrics::counter!("sekisho_store_retries_total", "store" => "redis")
                        .increment(1);
                    f(self.conn.clone()).await.map(|v| (v, true))
                }
                r => r.map(|v| (v, false)),
            }
        };
        match tokio::time::timeout(self.deadline, attempts).await {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable("redis call timed out".into())),
        }
    }

    /// [`Self::call`] for a command that may always be repeated.
    async fn run<T, F, Fut>(&self, f: F) -> StoreResult<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        Ok(self.call(Repeat::Safe, f).await?.0)
    }

    async fn hgetall(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        self.run(|mut c| async move { c.hgetall(key).await }).await
    }

    /// Adds `member` to an index set whose lifetime covers `until_s` (seconds).
    async fn index_add(&self, key: &str, member: &str, until_s: i64) -> StoreResult<()> {
        // SADD and EXPIREAT NX/GT give the same result however often they run.
        self.run(|mut c| async move {
            redis::pipe()
                .atomic()
                .sadd(key, member)
                .ignore()
                .cmd("EXPIREAT")
                .arg(key)
                .arg(until_s)
                .arg("NX")
                .ignore()
                .cmd("EXPIREAT")
                .arg(key)
                .arg(until_s)
                .arg("GT")
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn members(&self, key: &str) -> StoreResult<Vec<String>> {
        self.run(|mut c| async move { c.smembers(key).await }).await
    }

    async fn srem(&self, key: &str, member: &str) -> StoreResult<()> {
        self.run(|mut c| async move { c.srem::<_, _, ()>(key, member).await })
            .await
    }
}

fn num(h: &HashMap<String, String>, k: &str) -> Option<i64> {
    h.get(k).and_then(|v| v.parse().ok())
}

fn family_from_hash(id: &str, h: &HashMap<String, String>) -> Option<FamilyRecord> {
    Some(FamilyRecord {
        id: id.to_string(),
        user_id: num(h, "user")?,
        current_jti: h.get("cur")?.clone(),
        current_iat: num(h, "iat")?,
        current_exp: num(h, "exp")?,
        previous_jti: h.get("prev").cloned(),
        rotated_at: num(h, "rot").map(Timestamp),
        created_at: Timestamp(num(h, "created")?),
        absolute_exp: num(h, "abs")?,
        revoked_at: num(h, "revoked").map(Timestamp),
    })
}

fn session_from_hash(hash: &str, h: &HashMap<String, String>) -> Option<SessionRecord> {
    Some(SessionRecord {
        id_hash: hash.to_string(),
        public_id: h.get("public")?.clone(),
        user_id: num(h, "user")?,
        created_at: Timestamp(num(h, "created")?),
        last_seen: Timestamp(num(h, "seen")?),
        idle_expires_at: Timestamp(num(h, "idle")?),
        absolute_expires_at: Timestamp(num(h, "abs")?),
        user_agent: h.get("ua").cloned().unwrap_or_default(),
        ip: h.get("ip").cloned().unwrap_or_default(),
        // Sessions written before these fields existed were password logins at creation.
        login: h
            .get("amr")
            .and_then(|amr| {
                let at = num(h, "at").unwrap_or(Timestamp(num(h, "created")?).secs());
                LoginMethod::from_amr(&amr.split(' ').collect::<Vec<_>>(), at)
            })
            .unwrap_or(LoginMethod::password(Timestamp(num(h, "created")?))),
    })
}

fn successor(parts: &[String]) -> StoreResult<Successor> {
    match parts {
        [_, jti, iat, exp] => Ok(Successor {
            jti: jti.clone(),
            iat: iat
                .parse()
                .map_err(|_| StoreError::Unavailable("redis: bad iat".into()))?,
            exp: exp
                .parse()
                .map_err(|_| StoreError::Unavailable("redis: bad exp".into()))?,
        }),
        _ => Err(StoreError::Unavailable(
            "redis: unexpected script reply".into(),
        )),
    }
}

#[async_trait]
impl FamilyStore for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await?;
        Ok(())
    }

    async fn create_family(&self, f: &FamilyRecord) -> StoreResult<bool> {
        let key = self.family_key(&f.id);
        let mut fields: Vec<(&str, String)> = vec![
            ("user", f.user_id.to_string()),
            ("cur", f.current_jti.clone()),
            ("iat", f.current_iat.to_string()),
            ("exp", f.current_exp.to_string()),
            ("created", f.created_at.millis().to_string()),
            ("abs", f.absolute_exp.to_string()),
        ];
        if let Some(p) = &f.previous_jti {
            fields.push(("prev", p.clone()));
        }
        if let Some(r) = f.rotated_at {
            fields.push(("rot", r.millis().to_string()));
        }
        if let Some(r) = f.revoked_at {
            fields.push(("revoked", r.millis().to_string()));
        }
        let exp = f.current_exp + 1;
        let (key, fields) = (&key, &fields);
        let (mut created, repeated): (i64, bool) = self
            .call(Repeat::Safe, |mut c| async move {
                let mut inv = CREATE.key(key);
                inv.arg(exp);
                for (k, v) in fields {
                    inv.arg(*k).arg(v);
                }
                inv.invoke_async(&mut c).await
            })
            .await?;
        // A repeated create that finds the family already there may have found its own first
        // attempt: it is ours when it holds the token we just minted (a 128-bit random id).
        if repeated
            && created == 0
            && self
                .family(&f.id)
                .await?
                .is_some_and(|existing| existing.current_jti == f.current_jti)
        {
            created = 1;
        }
        if created == 1 {
            self.index_add(
                &self.user_families_key(f.user_id),
                &f.id,
                f.absolute_exp + 1,
            )
            .await?;
        }
        Ok(created == 1)
    }

    async fn family(&self, id: &str) -> StoreResult<Option<FamilyRecord>> {
        let h = self.hgetall(&self.family_key(id)).await?;
        Ok(if h.is_empty() {
            None
        } else {
            family_from_hash(id, &h)
        })
    }

    async fn rotate(&self, req: &RotateRequest) -> StoreResult<RotateOutcome> {
        let key = &self.family_key(&req.family_id);
        // Repeating a rotation that did reach Redis presents the token it just rotated away:
        // inside a grace window that answers the same successor (the window exists for exactly
        // this); without one it would count as reuse and revoke the family, so it is not
        // repeated then, and the caller gets the 503 of the outage instead.
        let repeat = if req.grace.is_zero() && req.rotate {
            Repeat::Never
        } else {
            Repeat::Safe
        };
        let (reply, _): (Vec<String>, bool) = self
            .call(repeat, |mut c| async move {
                ROTATE
                    .key(key)
                    .arg(&req.presented_jti)
                    .arg(&req.new_jti)
                    .arg(req.now.millis())
                    .arg(req.grace.as_millis() as u64)
                    .arg(req.idle_lifetime.as_secs())
                    .arg(if req.rotate { "1" } else { "0" })
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(match reply.first().map(String::as_str) {
            Some("rotated") => RotateOutcome::Rotated(successor(&reply)?),
            Some("grace") => RotateOutcome::Grace(successor(&reply)?),
            Some("unchanged") => RotateOutcome::Unchanged(successor(&reply)?),
            Some("reuse") => RotateOutcome::ReuseDetected,
            Some("revoked") => RotateOutcome::Revoked,
            Some("expired") => RotateOutcome::Expired,
            Some("notfound") => RotateOutcome::NotFound,
            _ => {
                return Err(StoreError::Unavailable(
                    "redis: unexpected rotate reply".into(),
                ));
            }
        })
    }

    async fn revoke_family(
        &self,
        id: &str,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<RevokeOutcome> {
        let key = &self.family_key(id);
        let (reply, repeated): (String, bool) = self
            .call(Repeat::Safe, |mut c| async move {
                REVOKE
                    .key(key)
                    .arg(now.millis())
                    .arg(reason)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(match reply.as_str() {
            "revoked" => RevokeOutcome::Revoked,
            // The first attempt may have revoked it: either way it is revoked now, by this call
            // or one racing it.
            "already" if repeated => RevokeOutcome::Revoked,
            "already" => RevokeOutcome::AlreadyRevoked,
            _ => RevokeOutcome::NotFound,
        })
    }

    async fn revoke_user_families(
        &self,
        user: UserId,
        now: Timestamp,
        reason: &str,
    ) -> StoreResult<u64> {
        let index = self.user_families_key(user);
        let mut n = 0;
        for id in self.members(&index).await? {
            match self.revoke_family(&id, now, reason).await? {
                RevokeOutcome::Revoked => n += 1,
                RevokeOutcome::AlreadyRevoked => {}
                RevokeOutcome::NotFound => self.srem(&index, &id).await?,
            }
        }
        Ok(n)
    }

    /// Nothing to do: every family key expires with its last token.
    async fn purge_expired_families(&self, _now: Timestamp) -> StoreResult<u64> {
        Ok(0)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        FamilyStore::ping(self).await
    }

    async fn create_session(&self, s: &SessionRecord) -> StoreResult<()> {
        let key = self.session_key(&s.id_hash);
        let fields: Vec<(&str, String)> = vec![
            ("public", s.public_id.clone()),
            ("user", s.user_id.to_string()),
            ("created", s.created_at.millis().to_string()),
            ("seen", s.last_seen.millis().to_string()),
            ("idle", s.idle_expires_at.millis().to_string()),
            ("abs", s.absolute_expires_at.millis().to_string()),
            ("ua", s.user_agent.clone()),
            ("ip", s.ip.clone()),
            ("amr", s.login.amr().join(" ")),
            ("at", s.login.auth_time.to_string()),
        ];
        let deadline = s.idle_expires_at.min(s.absolute_expires_at).millis();
        let (k, fields) = (&key, &fields);
        // Writing the same fields and deadline again changes nothing.
        self.run(|mut c| async move {
            redis::pipe()
                .atomic()
                .hset_multiple(k, fields)
                .ignore()
                .pexpire_at(k, deadline)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await?;
        self.index_add(
            &self.user_sessions_key(s.user_id),
            &s.id_hash,
            s.absolute_expires_at.secs() + 1,
        )
        .await
    }

    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let h = self.hgetall(&self.session_key(id_hash)).await?;
        Ok(if h.is_empty() {
            None
        } else {
            session_from_hash(id_hash, &h)
        })
    }

    async fn touch_session(
        &self,
        id_hash: &str,
        now: Timestamp,
        idle_expires_at: Timestamp,
        older_than: Timestamp,
    ) -> StoreResult<bool> {
        let key = &self.session_key(id_hash);
        // Conditional on `last_seen`: a repeat after a success is a no-op.
        let n: i64 = self
            .run(|mut c| async move {
                TOUCH
                    .key(key)
                    .arg(now.millis())
                    .arg(idle_expires_at.millis())
                    .arg(older_than.millis())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(n == 1)
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool> {
        let key = self.session_key(id_hash);
        let Some(s) = self.session(id_hash).await? else {
            return Ok(false);
        };
        let key = &key;
        let (n, repeated): (i64, bool) = self
            .call(Repeat::Safe, |mut c| async move { c.del(key).await })
            .await?;
        self.srem(&self.user_sessions_key(s.user_id), id_hash)
            .await?;
        // The session was there a moment ago: a repeated delete that finds nothing deleted it.
        Ok(n == 1 || repeated)
    }

    async fn delete_session_by_public_id(
        &self,
        user: UserId,
        public_id: &str,
    ) -> StoreResult<bool> {
        for s in self.list_sessions(user).await? {
            if s.public_id == public_id {
                return self.delete_session(&s.id_hash).await;
            }
        }
        Ok(false)
    }

    async fn list_sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        let index = self.user_sessions_key(user);
        let mut out = Vec::new();
        for hash in self.members(&index).await? {
            match self.session(&hash).await? {
                Some(s) => out.push(s),
                // Expired by its TTL: drop it from the index too.
                None => self.srem(&index, &hash).await?,
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.public_id).cmp(&(b.created_at, &b.public_id)));
        Ok(out)
    }

    async fn delete_user_sessions(&self, user: UserId, keep: Option<&str>) -> StoreResult<u64> {
        let mut n = 0;
        for s in self.list_sessions(user).await? {
            if Some(s.id_hash.as_str()) != keep && self.delete_session(&s.id_hash).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Nothing to do: every session key expires at its deadline.
    async fn purge_expired_sessions(&self, _now: Timestamp) -> StoreResult<u64> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_of_one_family_or_session_share_a_cluster_slot() {
        let r = RedisStore {
            conn: dummy_conn().await,
            prefix: "p".into(),
            deadline: Duration::from_secs(1),
        };
        assert_eq!(r.family_key("abc"), "p:fam:{abc}");
        assert_eq!(r.session_key("h"), "p:sess:{h}");
        assert_eq!(r.user_families_key(7), "p:ufam:{7}");
    }

    async fn dummy_conn() -> ConnectionManager {
        let client =
            redis::Client::open(std::env::var("SEKISHO_TEST_REDIS_URL").expect(
                "SEKISHO_TEST_REDIS_URL must name a Redis server (scripts/test.sh sets it)",
            ))
            .unwrap();
        ConnectionManager::new(client).await.unwrap()
    }
}
