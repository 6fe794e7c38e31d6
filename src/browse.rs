//! `selfplay archive browse`: a terminal UI over an archive.
//!
//! The archive is read a page at a time by a worker thread (from the database, or from the daemon
//! while it runs), so the interface never waits on a large archive: it draws what it has and says
//! what it is loading. Keys: `?` shows them all.

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;
use store::lineage::Direction;
use store::query::PageOrder;
use store::{Filter, ProblemRecord, Query};

use crate::access::Access;
use crate::filter_args::FilterArgs;

/// Problems fetched per request.
const PAGE: usize = 200;
/// Fetch the next page when the selection is this close to the end of what is loaded.
const PREFETCH: usize = 40;

/// What the worker is asked for.
enum Request {
    Page { generation: u64, filter: Box<Filter>, after: Option<u64>, newest: bool },
    Lineage { id: u64 },
    Show { id: u64 },
}

/// What the worker answers.
enum Response {
    Page { generation: u64, records: Vec<ProblemRecord>, last: bool },
    Lineage { id: u64, related: Vec<Relative> },
    Show { record: Box<ProblemRecord> },
    Failed(String),
}

/// Answers requests in order on its own thread.
fn worker(access: Access, requests: Receiver<Request>, responses: Sender<Response>) {
    for request in requests {
        let response = match request {
            Request::Page { generation, filter, after, newest } => {
                let query = Query::Page {
                    filter: *filter,
                    order: PageOrder::Id { newest, after },
                    limit: Some(PAGE),
                };
                access.records(&query).map(|records| Response::Page {
                    generation,
                    last: records.len() < PAGE,
                    records,
                })
            }
            Request::Lineage { id } => access.lineage(id, 3).map(|lineage| {
                let mut related = Vec::new();
                for (side, dir) in [("ancestor", Direction::Incoming), ("descendant", Direction::Outgoing)] {
                    for rid in lineage.relatives(dir) {
                        let text =
                            lineage.records().get(&rid).map_or("(not in the archive)", |r| r.text.as_str());
                        related.push((side.to_string(), rid, text.to_string()));
                    }
                }
                Response::Lineage { id, related }
            }),
            Request::Show { id } => {
                access.record(id).map(|record| Response::Show { record: Box::new(record) })
            }
        };
        let response = response.unwrap_or_else(|e| Response::Failed(format!("{e:#}")));
        if responses.send(response).is_err() {
            return;
        }
    }
}

/// A problem in a lineage: `ancestor` or `descendant`, its id, its text.
type Relative = (String, u64, String);

/// Which pane has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    List,
    /// The filter prompt is open.
    Filter,
    /// The lineage pane: the selection moves over related problems.
    Lineage,
}

/// The browser's state; drawing and keys are functions of it, so it is tested without a terminal.
pub struct App {
    requests: Sender<Request>,
    responses: Receiver<Response>,
    filter: Filter,
    filter_text: String,
    prompt: String,
    newest: bool,
    generation: u64,
    rows: Vec<ProblemRecord>,
    table: TableState,
    loading: bool,
    exhausted: bool,
    focus: Focus,
    /// A problem reached through lineage, shown instead of the selected row.
    focused: Option<ProblemRecord>,
    /// Problems visited through lineage, to go back to.
    history: Vec<u64>,
    /// The problem whose lineage is shown, and its relatives: side, id, text.
    lineage: Option<(u64, Vec<Relative>)>,
    lineage_selected: usize,
    help: bool,
    status: String,
    pub quit: bool,
}

impl App {
    /// Starts the worker over `access` and asks for the first page.
    pub fn new(access: Access) -> App {
        let (requests, worker_requests) = mpsc::channel();
        let (worker_responses, responses) = mpsc::channel();
        std::thread::Builder::new()
            .name("browse-worker".into())
            .spawn(move || worker(access, worker_requests, worker_responses))
            .expect("a thread starts");
        let mut app = App {
            requests,
            responses,
            filter: Filter::default(),
            filter_text: String::new(),
            prompt: String::new(),
            newest: false,
            generation: 0,
            rows: Vec::new(),
            table: TableState::default(),
            loading: false,
            exhausted: false,
            focus: Focus::List,
            focused: None,
            history: Vec::new(),
            lineage: None,
            lineage_selected: 0,
            help: false,
            status: String::new(),
            quit: false,
        };
        app.reload();
        app
    }

    fn send(&mut self, r: Request) {
        if self.requests.send(r).is_err() {
            self.status = "the archive reader stopped".into();
        }
    }

    /// Drops what is loaded and reads from the start under the current filter and order.
    fn reload(&mut self) {
        self.generation += 1;
        self.rows.clear();
        self.table.select(None);
        self.exhausted = false;
        self.loading = true;
        let r = Request::Page {
            generation: self.generation,
            filter: Box::new(self.filter.clone()),
            after: None,
            newest: self.newest,
        };
        self.send(r);
    }

    fn load_more(&mut self) {
        if self.loading || self.exhausted {
            return;
        }
        self.loading = true;
        let after = self.rows.last().map(|r| r.id);
        let r = Request::Page {
            generation: self.generation,
            filter: Box::new(self.filter.clone()),
            after,
            newest: self.newest,
        };
        self.send(r);
    }

    /// Takes the worker's answers; never waits.
    pub fn poll(&mut self) {
        while let Ok(response) = self.responses.try_recv() {
            match response {
                Response::Page { generation, records, last } if generation == self.generation => {
                    self.loading = false;
                    self.exhausted = last;
                    self.rows.extend(records);
                    if self.table.selected().is_none() && !self.rows.is_empty() {
                        self.table.select(Some(0));
                    }
                    self.status.clear();
                }
                Response::Page { .. } => {} // for a filter since replaced
                Response::Lineage { id, related } => {
                    self.lineage = Some((id, related));
                    self.lineage_selected = 0;
                    self.status.clear();
                }
                Response::Show { record } => {
                    self.status.clear();
                    self.focused = Some(*record);
                }
                Response::Failed(e) => {
                    self.loading = false;
                    self.status = e;
                }
            }
        }
        if let Some(i) = self.table.selected() {
            if i + PREFETCH >= self.rows.len() {
                self.load_more();
            }
        }
    }

    /// The position of the selected row in the list, and how many rows are loaded.
    pub fn position(&self) -> (Option<usize>, usize) {
        (self.table.selected(), self.rows.len())
    }

    /// The problem the detail pane shows.
    fn current(&self) -> Option<&ProblemRecord> {
        self.focused.as_ref().or_else(|| self.table.selected().and_then(|i| self.rows.get(i)))
    }

    fn move_by(&mut self, delta: isize) {
        self.focused = None;
        self.history.clear();
        if self.rows.is_empty() {
            return;
        }
        let i = self.table.selected().unwrap_or(0) as isize + delta;
        self.table.select(Some(i.clamp(0, self.rows.len() as isize - 1) as usize));
        self.lineage = None;
    }

    pub fn handle_key(&mut self, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if self.help {
            self.help = false;
            return;
        }
        match self.focus {
            Focus::Filter => match key.code {
                KeyCode::Enter => match parse_filter(&self.prompt) {
                    Ok(f) => {
                        self.filter = f;
                        self.filter_text = self.prompt.trim().to_string();
                        self.focus = Focus::List;
                        self.focused = None;
                        self.lineage = None;
                        self.reload();
                    }
                    Err(e) => self.status = e,
                },
                KeyCode::Esc => {
                    self.focus = Focus::List;
                    self.status.clear();
                }
                KeyCode::Backspace => {
                    self.prompt.pop();
                    self.status.clear();
                }
                KeyCode::Char(c) => {
                    self.prompt.push(c);
                    self.status.clear();
                }
                _ => {}
            },
            Focus::Lineage => match key.code {
                KeyCode::Up | KeyCode::Char('k') => {
                    self.lineage_selected = self.lineage_selected.saturating_sub(1)
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    let n = self.lineage.as_ref().map_or(0, |(_, r)| r.len());
                    self.lineage_selected = (self.lineage_selected + 1).min(n.saturating_sub(1));
                }
                KeyCode::Enter => {
                    let target =
                        self.lineage.as_ref().and_then(|(_, r)| r.get(self.lineage_selected)).map(|r| r.1);
                    if let (Some(id), Some(from)) = (target, self.current().map(|r| r.id)) {
                        self.history.push(from);
                        self.jump(id);
                    }
                }
                KeyCode::Backspace => {
                    if let Some(id) = self.history.pop() {
                        self.jump(id);
                    }
                }
                KeyCode::Esc | KeyCode::Char('l') => {
                    self.focus = Focus::List;
                    self.lineage = None;
                }
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Char('?') => self.help = true,
                _ => {}
            },
            Focus::List => match key.code {
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Esc => {
                    self.focused = None;
                    self.history.clear();
                }
                KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
                KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
                KeyCode::PageUp => self.move_by(-20),
                KeyCode::PageDown => self.move_by(20),
                KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN / 2),
                KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX / 2),
                KeyCode::Char('/') => {
                    self.prompt = self.filter_text.clone();
                    self.focus = Focus::Filter;
                }
                KeyCode::Char('n') => {
                    self.newest = !self.newest;
                    self.reload();
                }
                KeyCode::Char('l') => {
                    if let Some(id) = self.current().map(|r| r.id) {
                        self.status = format!("reading the lineage of {id}…");
                        self.send(Request::Lineage { id });
                        self.focus = Focus::Lineage;
                    }
                }
                KeyCode::Char('?') => self.help = true,
                _ => {}
            },
        }
    }

    /// Shows problem `id` and its lineage.
    fn jump(&mut self, id: u64) {
        self.status = format!("reading problem {id}…");
        self.send(Request::Show { id });
        self.send(Request::Lineage { id });
    }

    pub fn draw(&mut self, frame: &mut Frame) {
        let [top, body, bottom] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(1)])
                .areas(frame.area());
        let [list, detail] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        let loaded = format!(
            "{}{} problems{}",
            self.rows.len(),
            if self.exhausted { "" } else { "+" },
            if self.loading { ", loading…" } else { "" }
        );
        let filter = if self.filter_text.is_empty() { "all".to_string() } else { self.filter_text.clone() };
        let order = if self.newest { "newest first" } else { "oldest first" };
        frame.render_widget(
            Line::from(format!(" selfplay archive · {filter} · {order} · {loaded}")).bold(),
            top,
        );
        self.draw_list(frame, list);
        if self.focus == Focus::Lineage {
            let [upper, lower] =
                Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(detail);
            self.draw_detail(frame, upper);
            self.draw_lineage(frame, lower);
        } else {
            self.draw_detail(frame, detail);
        }
        let hint = match self.focus {
            Focus::Filter if !self.status.is_empty() => format!(" filter> {}▏  {}", self.prompt, self.status),
            Focus::Filter => format!(" filter> {}▏  (Enter apply, Esc cancel)", self.prompt),
            _ if !self.status.is_empty() => format!(" {}", self.status),
            Focus::Lineage => " ↑↓ choose · Enter go to · Backspace back · l/Esc close · ? keys".into(),
            Focus::List => " ↑↓ PgUp PgDn g G move · / filter · n order · l lineage · ? keys · q quit".into(),
        };
        frame.render_widget(Line::from(hint).reversed(), bottom);
        if self.help {
            draw_help(frame, body);
        }
    }

    fn draw_list(&mut self, frame: &mut Frame, area: Rect) {
        let rows = self.rows.iter().map(|r| {
            let p = r.solve_rate.map_or("-".into(), |p| format!("{p:.2}"));
            let depth = r.depth.map_or("-".into(), |d| d.to_string());
            Row::new([
                Cell::from(r.id.to_string()),
                Cell::from(r.round.to_string()),
                Cell::from(crate::show::status(r).into_owned()),
                Cell::from(p),
                Cell::from(depth),
                Cell::from(store::safe_text::for_terminal(&r.text).into_owned()),
            ])
        });
        let widths = [
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(4),
            Constraint::Length(3),
            Constraint::Min(10),
        ];
        let table = Table::new(rows, widths)
            .header(Row::new(["id", "round", "status", "p", "d", "text"]).bold())
            .block(Block::default().borders(Borders::ALL).title(" problems "))
            .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
        frame.render_stateful_widget(table, area, &mut self.table);
    }

    fn draw_detail(&self, frame: &mut Frame, area: Rect) {
        let text = match self.current() {
            Some(r) => {
                let mut out = Vec::new();
                let _ = crate::show::write_record(r, &mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
            None if self.loading => "loading…".into(),
            None => "no problem matches".into(),
        };
        let title = if self.focused.is_some() { " problem (via lineage; Esc returns) " } else { " problem " };
        let p = Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title));
        frame.render_widget(p, area);
    }

    fn draw_lineage(&self, frame: &mut Frame, area: Rect) {
        let block = Block::default().borders(Borders::ALL);
        let Some((id, related)) = &self.lineage else {
            frame.render_widget(Paragraph::new("reading…").block(block.title(" lineage ")), area);
            return;
        };
        let rows = related.iter().map(|(side, rid, text)| {
            Row::new([
                Cell::from(side.clone()),
                Cell::from(rid.to_string()),
                Cell::from(store::safe_text::for_terminal(text).into_owned()),
            ])
        });
        let mut state =
            TableState::default().with_selected((!related.is_empty()).then_some(self.lineage_selected));
        let table = Table::new(rows, [Constraint::Length(10), Constraint::Length(8), Constraint::Min(10)])
            .header(Row::new(["", "id", "text"]).bold())
            .block(block.title(format!(" lineage of {id} ({} related) ", related.len())))
            .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
        frame.render_stateful_widget(table, area, &mut state);
    }
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let text = "\
↑ ↓ j k      move              PgUp PgDn   move 20
g G          first, last loaded
/            filter: words like  valid  invalid  reason=syntax  run=NAME
             rounds=10..20  p=0.2..0.8  padding=0.1..  depth=2..4
             int=0.5..  scorer=NAME  text=SUBSTRING  hash=HEX
n            newest / oldest first
l            lineage of the problem: Enter goes to one, Backspace back
Esc          back to the selected row
q  Ctrl-C    quit

any key closes this";
    let w = area.width.min(80);
    let h = area.height.min(14);
    let popup =
        Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}

/// Parses the filter prompt: space-separated `valid`, `invalid`, or `key=value` with the keys of
/// `archive list`'s filter flags (and the short forms `p`, `int`, `text`).
pub fn parse_filter(text: &str) -> Result<Filter, String> {
    let mut f = FilterArgs::default();
    for word in text.split_whitespace() {
        match word.split_once('=') {
            None if word == "valid" => f.valid = true,
            None if word == "invalid" => f.invalid = true,
            None => return Err(format!("{word:?}: expected valid, invalid or key=value")),
            Some((key, value)) => {
                let v = Some(value.to_string());
                match key {
                    "run" => f.run = v,
                    "rounds" | "round" => f.rounds = v,
                    "reason" => f.reason = v,
                    "p" | "solve-rate" => f.solve_rate = v,
                    "padding" => f.padding = v,
                    "depth" => f.depth = v,
                    "int" | "interestingness" => f.interestingness = v,
                    "scorer" => f.scorer = v,
                    "text" | "contains" => f.contains = v,
                    "hash" => f.hash = v,
                    _ => return Err(format!("unknown filter {key:?} (? lists them)")),
                }
            }
        }
    }
    if f.valid && f.invalid {
        return Err("valid and invalid together match nothing".into());
    }
    // The same checks `archive list` makes, with the same messages.
    f.to_filter().map_err(|e| e.to_string())
}

/// Runs the browser on the terminal until the user quits.
pub fn run(access: Access) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("browse needs a terminal; use `archive list` or `archive export` in scripts");
    }
    let mut app = App::new(access);
    let mut terminal = ratatui::init();
    let result = (|| -> anyhow::Result<()> {
        while !app.quit {
            app.poll();
            terminal.draw(|f| app.draw(f))?;
            if event::poll(Duration::from_millis(50))? {
                if let Event::Key(key) = event::read()? {
                    app.handle_key(key);
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_prompt_reads_what_list_flags_mean() {
        let f = parse_filter("valid p=0.2..0.8 depth=2 text=+0 scorer=novelty").unwrap();
        assert_eq!(f.valid, Some(true));
        assert_eq!(f.solve_rate, Some((0.2, 0.8)));
        assert_eq!(f.depth, Some((2, 2)));
        assert_eq!(f.contains.as_deref(), Some("+0"));
        assert_eq!(f.scorer.as_deref(), Some("novelty"));
        assert!(parse_filter("").unwrap().is_empty());
        assert!(parse_filter("colour=red").unwrap_err().contains("unknown filter \"colour\""));
        assert!(parse_filter("p=2..3").unwrap_err().contains("--solve-rate"));
        assert!(parse_filter("valid invalid").is_err());
        assert!(parse_filter("depth").is_err());
    }
}
