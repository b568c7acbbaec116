//! `kitedesk-bench-query`: time N sequential GETs of one API URL over a
//! single keep-alive HTTP/1.1 connection and print the latency distribution.
//!
//! ```text
//! kitedesk-bench-query URL TOKEN [requests=2000] [warmup=200] [max_secs=60]
//! ```
//!
//! Stops early once `max_secs` have passed (warm-up included, at most half
//! of it), so a pathological query still ends; `requests=` then says how
//! many ran. A single request that takes longer than `max_secs` is counted
//! in `timeouts=` (its sample is the time waited) and ends the run.
//!
//! A deliberately tiny client (std only, no async runtime) so its own
//! overhead is a few microseconds: each sample is the time from writing the
//! request to having read the whole response body. Prints
//! `RESULT requests=… p50_us=… p90_us=… p95_us=… p99_us=… max_us=… mean_us=…
//! ok=… bad=… empty=… avg_bytes=…`; `empty` counts answers with no events.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    request: Vec<u8>,
}

impl Conn {
    fn open(url: &str, token: &str, timeout: Duration) -> Result<Conn, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("only http:// URLs are supported")?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let stream = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
             Accept: application/json\r\nConnection: keep-alive\r\n\r\n"
        )
        .into_bytes();
        Ok(Conn {
            reader: BufReader::with_capacity(
                1 << 16,
                stream.try_clone().map_err(|e| e.to_string())?,
            ),
            writer: stream,
            request,
        })
    }

    /// One request/response; returns (status, body).
    fn get(&mut self) -> Result<(u16, Vec<u8>), String> {
        self.writer
            .write_all(&self.request)
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim();
                if k == "content-length" {
                    length = v.parse::<usize>().ok();
                } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader
                    .read_line(&mut line)
                    .map_err(|e| e.to_string())?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| format!("bad chunk size {line:?}"))?;
                let mut chunk = vec![0; size + 2];
                self.reader
                    .read_exact(&mut chunk)
                    .map_err(|e| e.to_string())?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            let n = length.ok_or("response has neither Content-Length nor chunked body")?;
            body.resize(n, 0);
            self.reader
                .read_exact(&mut body)
                .map_err(|e| e.to_string())?;
        }
        Ok((status, body))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!(
            "usage: kitedesk-bench-query URL TOKEN [requests=2000] [warmup=200] [max_secs=60]"
        );
        std::process::exit(2);
    }
    let requests: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let warmup: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(200);
    let max_secs: f64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(60.0);
    if let Err(e) = run(&args[0], &args[1], requests, warmup, max_secs) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(
    url: &str,
    token: &str,
    requests: usize,
    warmup: usize,
    max_secs: f64,
) -> Result<(), String> {
    let began = Instant::now();
    let out_of_time = || began.elapsed().as_secs_f64() > max_secs;
    let mut conn = Conn::open(url, token, Duration::from_secs_f64(max_secs))?;
    let mut timeouts = 0usize;
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..warmup {
        let t0 = Instant::now();
        if conn.get().is_err() && t0.elapsed().as_secs_f64() >= max_secs {
            // Too slow to warm up: the one timed-out request is the result.
            timeouts += 1;
            samples.push(t0.elapsed().as_micros() as u64);
            break;
        }
        if began.elapsed().as_secs_f64() > max_secs / 2.0 {
            break;
        }
    }
    let (mut ok, mut bad, mut empty, mut bytes) = (0usize, 0usize, 0usize, 0usize);
    for _ in 0..requests {
        if timeouts > 0 {
            break;
        }
        let t0 = Instant::now();
        let (status, body) = match conn.get() {
            Ok(r) => r,
            Err(_) if t0.elapsed().as_secs_f64() >= max_secs => {
                timeouts += 1;
                samples.push(t0.elapsed().as_micros() as u64);
                break;
            }
            Err(e) => return Err(e),
        };
        samples.push(t0.elapsed().as_micros() as u64);
        if status == 200 {
            ok += 1;
        } else {
            bad += 1;
        }
        // Compact JSON from the daemon: a non-empty page starts its list so.
        if !body.windows(11).any(|w| w == b"\"events\":[{") {
            empty += 1;
        }
        bytes += body.len();
        if out_of_time() {
            break;
        }
    }
    samples.sort_unstable();
    // Nearest-rank percentile.
    let pct = |p: f64| -> u64 {
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1]
    };
    let n = samples.len().max(1);
    println!(
        "RESULT requests={} p50_us={} p90_us={} p95_us={} p99_us={} max_us={} mean_us={} ok={ok} bad={bad} empty={empty} timeouts={timeouts} avg_bytes={}",
        samples.len(),
        pct(50.0),
        pct(90.0),
        pct(95.0),
        pct(99.0),
        samples.last().copied().unwrap_or(0),
        samples.iter().sum::<u64>() / n as u64,
        bytes / n
    );
    Ok(())
}
