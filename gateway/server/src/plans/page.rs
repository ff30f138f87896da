//! The holistic plan as a page one parent can read and print, in plain
//! Danish: the goals, who does what, the next appointments and whom to call
//! (seed 000: the parents own the plan; it must not become their job to
//! coordinate). The page is plain HTML with one inline style sheet — no
//! scripts, no external resources — so it prints as it shows and works
//! under the strict content security policy it is served with.

use std::fmt::Write as _;

use bro_domain::{Appointment, ContactPerson, Date, GoalAim, Organisation, Sector, SupportMeasure, Timestamp};
use bro_rules::coordination::ConflictKind;
use bro_rules::holistic::{HolisticPlan, PlanState};
use chrono::{Datelike, Timelike};

use crate::clock::danish_local_time;

/// Most upcoming appointments the page lists.
const MAX_APPOINTMENTS: usize = 12;

/// The page's style sheet (its hash goes into the content security policy).
pub const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;line-height:1.5;color:#1b1b1b;background:#fff;margin:0}
main{max-width:46rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.7rem;margin:0 0 .5rem}h2{font-size:1.25rem;margin:2rem 0 .5rem;border-bottom:2px solid #1b5e8c;padding-bottom:.2rem}
h3{font-size:1.05rem;margin:1rem 0 .25rem}
.lead{font-size:1.1rem}.status{display:inline-block;padding:.15rem .6rem;border-radius:1rem;background:#e8f1f8;font-weight:600}
.status.warn{background:#fdecea}.card{border:1px solid #c9d3dc;border-radius:.5rem;padding:.75rem 1rem;margin:.75rem 0}
.coordinator{border:2px solid #1b5e8c;background:#f3f8fc}.note{background:#fff7e0;border-left:4px solid #e0a800;padding:.5rem .75rem}
span.note{display:block;margin:.25rem 0 .5rem}li{margin:.35rem 0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid #dde3e8}
ul{padding-left:1.2rem}a{color:#1b5e8c}footer{margin-top:2.5rem;font-size:.9rem;color:#555}
@media print{main{max-width:none;padding:0}a{color:#000;text-decoration:none}.card,tr,article{break-inside:avoid}h2{break-after:avoid}body{font-size:11pt}}";

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn sector_da(sector: Option<Sector>) -> &'static str {
    match sector {
        None => "Kommunen, børn og familie",
        Some(Sector::Jobcentre) => "Jobcentret",
        Some(Sector::Psychiatry) => "Psykiatrien",
        Some(Sector::AddictionTreatment) => "Misbrugsbehandlingen",
        Some(Sector::Health) => "Sundhedsvæsenet",
        Some(Sector::Other) => "Andre",
    }
}

fn measure_da(measure: SupportMeasure) -> &'static str {
    match measure {
        SupportMeasure::Bl75 => "En støtteperson, som du selv har valgt (§ 75)",
        SupportMeasure::Bl32_1_2 => "Praktisk og pædagogisk støtte i hjemmet",
        SupportMeasure::Bl32_1_3 => "En fast kontaktperson for familien",
        SupportMeasure::Bl32_1_5 => "Familiebehandling",
        SupportMeasure::Bl32_1_8 => "Rådgivning, behandling eller anden støtte",
        SupportMeasure::Bl35 => "Økonomisk støtte, fx til transport ved samvær",
        SupportMeasure::OtherLegislation => "Støtte efter anden lovgivning",
    }
}

const MONTHS: [&str; 12] = [
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = ["mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"];

/// A date as Danes write it: `2. marts 2026`.
pub fn date_da(d: Date) -> String {
    format!("{}. {} {}", d.day(), MONTHS[d.month0() as usize], d.year())
}

fn when_da(a: &Appointment) -> String {
    let start = danish_local_time(a.start_time);
    let mut out = format!(
        "{} {} kl. {:02}.{:02}",
        WEEKDAYS[start.weekday().num_days_from_monday() as usize],
        date_da(start.date()),
        start.hour(),
        start.minute()
    );
    if let Some(end) = a.end_time.map(danish_local_time) {
        let _ = write!(out, "–{:02}.{:02}", end.hour(), end.minute());
    }
    out
}

fn contact_lines(person: Option<&ContactPerson>, organisation: &Organisation) -> String {
    let mut out = String::new();
    if let Some(p) = person.filter(|p| !p.display_name.is_empty()) {
        let _ = write!(out, "<strong>{}</strong>", escape(&p.display_name));
        if !p.role.is_empty() {
            let _ = write!(out, ", {}", escape(&p.role));
        }
        out.push_str("<br>");
    }
    if !organisation.display_name.is_empty() {
        let _ = write!(out, "{}<br>", escape(&organisation.display_name));
    }
    if let Some(p) = person {
        if !p.phone.is_empty() {
            let digits: String = p.phone.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
            let _ = write!(out, "Telefon: <a href=\"tel:{}\">{}</a><br>", escape(&digits), escape(&p.phone));
        }
        if !p.email.is_empty() {
            let _ = write!(out, "E-mail: <a href=\"mailto:{0}\">{0}</a><br>", escape(&p.email));
        }
    }
    out
}

fn state_da(state: PlanState) -> (&'static str, bool) {
    match state {
        PlanState::InForce => ("Planen gælder", false),
        PlanState::Proposed => (
            "Forslag – planen gælder, når du (og den anden forælder, hvis planen også er for hende eller ham) har sagt ja",
            true,
        ),
        PlanState::AgreementWithdrawn => ("Samtykket er trukket tilbage – planen gælder ikke længere", true),
        PlanState::Superseded => ("Erstattet af en nyere plan", true),
    }
}

/// The page for one parent: `plan` is that parent's view
/// (`HolisticPlan::parent_view`), `parent_name` their name, `municipality`
/// the placing municipality; `now` decides which appointments are upcoming.
pub fn render(plan: &HolisticPlan, parent_name: &str, municipality: &Organisation, now: Timestamp) -> String {
    let today = danish_local_time(now).date();
    let mut h = String::with_capacity(8 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"da\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <title>Din helhedsorienterede plan</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
    );
    let (state, warn) = state_da(plan.state);
    let _ = write!(
        h,
        "<header>\n<h1>Din helhedsorienterede plan</h1>\n\
         <p class=\"lead\">Planen samler det, som kommunen og de andre steder, du har kontakt med, gør sammen med dig, \
         så indsatserne trækker i samme retning – og så det ikke er dig, der skal koordinere (barnets lov § 78).</p>\n\
         <p>Til: <strong>{}</strong><br>Fra: {}<br>Udarbejdet: {}</p>\n<p><span class=\"status{}\">{}</span></p>\n</header>\n",
        escape(parent_name),
        escape(if municipality.display_name.is_empty() { "Kommunen" } else { &municipality.display_name }),
        date_da(plan.prepared_on),
        if warn { " warn" } else { "" },
        escape(state)
    );

    h.push_str("<section id=\"koordinator\">\n<h2>Din koordinator – ring hertil først</h2>\n");
    match &plan.coordinator {
        Some((c, _)) => {
            let _ = writeln!(
                h,
                "<div class=\"card coordinator\">{}<p>{} er din faste kontakt på tværs af alle steder i planen. \
                 Spørg hende eller ham, hvis noget er uklart, eller hvis to aftaler falder sammen.</p></div>",
                contact_lines(Some(&c.person), &c.organisation),
                escape(&c.person.display_name)
            );
        }
        None => h.push_str(
            "<p class=\"note\">Der er endnu ikke valgt en koordinator. Indtil da er din sagsbehandler i kommunen din kontakt.</p>\n",
        ),
    }
    h.push_str("</section>\n");

    h.push_str("<section id=\"maal\">\n<h2>Mål</h2>\n");
    if plan.goals.is_empty() {
        h.push_str("<p>Der er ikke skrevet mål i planen endnu.</p>\n");
    }
    for goal in &plan.goals {
        let title = if goal.change_in_parents.is_empty() { &goal.goal_id } else { &goal.change_in_parents };
        let aim = match goal.aim {
            Some(GoalAim::Homecoming) => "at barnet kan komme hjem",
            Some(GoalAim::Contact) => "samværet med barnet",
            None => "(ikke angivet endnu)",
        };
        let _ = write!(
            h,
            "<article class=\"card\">\n<h3>{}</h3>\n<p>Målet handler om: {aim}<br>Ansvarlig: {}{}</p>\n",
            escape(title),
            sector_da(goal.owner_sector),
            if goal.owner.is_empty() { String::new() } else { format!(" ({})", escape(&goal.owner)) }
        );
        if !goal.sub_goals.is_empty() {
            h.push_str("<p>Delmål:</p>\n<ul>\n");
            for sub in &goal.sub_goals {
                let _ = writeln!(h, "<li>{}</li>", escape(sub));
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</article>\n");
    }
    h.push_str("</section>\n");

    h.push_str("<section id=\"hvem-goer-hvad\">\n<h2>Hvem gør hvad</h2>\n");
    if plan.authority_measures.is_empty() && plan.sector_plans.iter().all(|p| p.activities.is_empty()) {
        h.push_str("<p>Der er ikke registreret indsatser endnu.</p>\n");
    } else {
        h.push_str(
            "<table>\n<thead><tr><th scope=\"col\">Hvem</th><th scope=\"col\">Hvad</th><th scope=\"col\">Hvornår</th></tr></thead>\n<tbody>\n",
        );
        for m in &plan.authority_measures {
            let when = match (m.started_on, m.granted_on) {
                (Some(on), _) => format!("Startet {}", date_da(on)),
                (None, Some(on)) => format!("Bevilget {}", date_da(on)),
                (None, None) => String::new(),
            };
            let _ =
                writeln!(h, "<tr><td>{}</td><td>{}</td><td>{when}</td></tr>", sector_da(None), measure_da(m.measure));
        }
        for p in &plan.sector_plans {
            for a in &p.activities {
                let who = if p.organisation.display_name.is_empty() {
                    sector_da(Some(p.sector)).to_owned()
                } else {
                    escape(&p.organisation.display_name)
                };
                let what = if a.title.is_empty() { &a.kind } else { &a.title };
                let mut when = match (a.start_date, a.end_date) {
                    (Some(s), Some(e)) => format!("{} – {}", date_da(s), date_da(e)),
                    (Some(s), None) => format!("Fra {}", date_da(s)),
                    _ => String::new(),
                };
                if a.minutes_per_week > 0 {
                    let hours = f64::from(a.minutes_per_week) / 60.0;
                    let _ = write!(
                        when,
                        "{}{} timer om ugen",
                        if when.is_empty() { "" } else { ", " },
                        format_hours(hours)
                    );
                }
                let _ = writeln!(h, "<tr><td>{who}</td><td>{}</td><td>{when}</td></tr>", escape(what));
            }
        }
        h.push_str("</tbody>\n</table>\n");
    }
    h.push_str("</section>\n");

    h.push_str("<section id=\"aftaler\">\n<h2>Dine næste aftaler</h2>\n");
    let overlapping: Vec<&str> = plan
        .conflicts
        .iter()
        .filter(|c| c.kind == ConflictKind::AppointmentsOverlap)
        .flat_map(|c| c.items.iter().filter_map(|i| i.strip_prefix("appointments/")))
        .collect();
    let upcoming: Vec<&Appointment> =
        plan.appointments.iter().filter(|a| !a.cancelled && a.end_time.unwrap_or(a.start_time) >= now).collect();
    if upcoming.is_empty() {
        h.push_str("<p>Du har ingen kommende aftaler i planen.</p>\n");
    } else {
        h.push_str("<ul>\n");
        for a in upcoming.iter().take(MAX_APPOINTMENTS) {
            let mut line = format!("<strong>{}</strong>: ", when_da(a));
            line.push_str(&escape(if a.title.is_empty() { "Møde" } else { &a.title }));
            let place = if a.organisation.display_name.is_empty() {
                sector_da(Some(a.sector)).to_owned()
            } else {
                escape(&a.organisation.display_name)
            };
            let _ = write!(line, " – {place}");
            if let Some(p) = a.professional.as_ref().filter(|p| !p.display_name.is_empty()) {
                let _ = write!(line, ", med {}", escape(&p.display_name));
            }
            if !a.location.is_empty() {
                let _ = write!(line, ". Sted: {}", escape(&a.location));
            }
            if overlapping.contains(&a.appointment_id.as_str()) {
                line.push_str(
                    "<br><span class=\"note\">Obs: Aftalen falder sammen med en anden aftale. Din koordinator hjælper med at flytte en af dem.</span>",
                );
            }
            let _ = writeln!(h, "<li>{line}</li>");
        }
        h.push_str("</ul>\n");
        if upcoming.len() > MAX_APPOINTMENTS {
            let _ = writeln!(h, "<p>… og {} aftaler mere.</p>", upcoming.len() - MAX_APPOINTMENTS);
        }
    }
    if plan.conflicts.iter().any(|c| c.kind == ConflictKind::TooManyMeetings) {
        h.push_str(
            "<p class=\"note\">Du har mange møder med forskellige fagpersoner i samme uge. Sig det til din koordinator, \
             hvis det bliver for meget – så ser vi på, om møder kan samles eller flyttes.</p>\n",
        );
    }
    h.push_str("</section>\n");

    h.push_str("<section id=\"kontakter\">\n<h2>Hvem kan du ringe til</h2>\n");
    let mut any = false;
    for c in &plan.sector_contacts {
        any = true;
        let _ = writeln!(
            h,
            "<div class=\"card\"><h3>{}</h3>{}</div>",
            sector_da(Some(c.sector)),
            contact_lines(c.contact_person.as_ref(), &c.organisation)
        );
    }
    for p in plan.sector_plans.iter().filter(|p| p.contact_person.is_some()) {
        let known = plan.sector_contacts.iter().any(|c| c.sector == p.sector && c.contact_person == p.contact_person);
        if !known {
            any = true;
            let _ = writeln!(
                h,
                "<div class=\"card\"><h3>{}</h3>{}</div>",
                sector_da(Some(p.sector)),
                contact_lines(p.contact_person.as_ref(), &p.organisation)
            );
        }
    }
    if !any {
        h.push_str("<p>Ring til din koordinator – hun eller han ved, hvem du skal tale med.</p>\n");
    }
    h.push_str("</section>\n");

    h.push_str("<section id=\"samtykke\">\n<h2>Dit samtykke</h2>\n");
    for a in &plan.agreements {
        match (a.agreed_on, a.withdrawn_on) {
            (Some(on), _) => {
                let _ = writeln!(h, "<p>Du sagde ja til planen den {}.</p>", date_da(on));
            }
            (None, Some(on)) => {
                let _ = writeln!(h, "<p>Du trak dit samtykke til planen tilbage den {}.</p>", date_da(on));
            }
            (None, None) => h.push_str("<p>Du har ikke sagt ja til planen endnu.</p>\n"),
        }
        let with: Vec<&str> = a.shared_with.iter().map(|s| share_da(s)).collect();
        if with.is_empty() {
            h.push_str("<p>Dine oplysninger fra planen deles ikke med andre steder.</p>\n");
        } else {
            let _ = writeln!(h, "<p>Du har sagt ja til, at din del af planen deles med: {}.</p>", with.join(", "));
        }
    }
    h.push_str(
        "<p>Du kan altid trække dit samtykke tilbage. Så gælder planen ikke længere, og kommunen laver en forældrehandleplan \
         med dig i stedet. Kontakt din koordinator eller din sagsbehandler.</p>\n</section>\n",
    );

    h.push_str("<footer>\n");
    if let Some(due) = plan.next_revision_due {
        let _ = writeln!(h, "<p>Planen skal tages op igen senest {}. Du kan altid bede om det før.</p>", date_da(due));
    }
    let _ = write!(
        h,
        "<p>Siden er lavet {} og viser planen, som den så ud da. Gem eller udskriv den, hvis du vil have den på papir.</p>\n\
         </footer>\n</main>\n</body>\n</html>\n",
        date_da(today)
    );
    h
}

/// The page shown when a link does not open, or the plan is gone.
pub fn render_error(heading: &str, text: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"da\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n<title>{0}</title>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n<main>\n<h1>{0}</h1>\n<p>{1}</p>\n</main>\n</body>\n</html>\n",
        escape(heading),
        escape(text)
    )
}

/// The page a link opens to: it sets the session and moves on to the plan
/// (`/plan`, without the token) — by the page itself, so the browser sends
/// the `SameSite=Strict` session cookie even when the link was clicked in
/// webmail on another site — and offers a link for a browser that does not.
pub fn render_opening() -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"da\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <meta http-equiv=\"refresh\" content=\"0; url=/plan\">\n<title>Din plan åbnes</title>\n\
         <style>{STYLE}</style>\n</head>\n\
         <body>\n<main>\n<h1>Din plan åbnes</h1>\n<p><a href=\"/plan\">Vis planen</a></p>\n</main>\n</body>\n</html>\n"
    )
}

fn share_da(scope: &str) -> &str {
    match scope {
        "share:jobcenter" => "jobcentret",
        "share:psychiatry" => "psykiatrien",
        "share:addiction-treatment" => "misbrugsbehandlingen",
        "share:health" => "sundhedsvæsenet",
        other => other.strip_prefix("share:").unwrap_or(other),
    }
}

fn format_hours(hours: f64) -> String {
    if hours.fract() == 0.0 { format!("{hours:.0}") } else { format!("{hours:.1}").replace('.', ",") }
}

#[cfg(test)]
mod tests;
