"""What the page e2e tests measure in the browser: layout, focus visibility, focus order and contrast.

Each check is one script run in the page; it returns what is wrong (an empty list when nothing is), so a failing
assertion names the element and the numbers.
"""

from __future__ import annotations

from selenium.webdriver.remote.webdriver import WebDriver

# WCAG relative luminance and contrast; `paint(el)` is the colour behind an element (its own background, else its
# nearest ancestor's), `ink(el, prop, under)` a colour property blended over `under` by the element's opacity.
COLOUR = """
const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
const lum = c => { const v = c.slice(0, 3).map(x => { x /= 255;
  return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
const paint = el => { for (let n = el; n; n = n.parentElement) {
  const c = rgb(getComputedStyle(n).backgroundColor); if (c.length === 3 || c[3] > 0) return c; }
  return [255, 255, 255]; };
const ink = (el, prop, under) => { let c = rgb(getComputedStyle(el)[prop]), a = c.length > 3 ? c[3] : 1;
  for (let n = el; n && !n.matches('button, li'); n = n.parentElement) a *= Number(getComputedStyle(n).opacity);
  return c.slice(0, 3).map((x, i) => x * a + under[i] * (1 - a)); };
"""


def layout_problems(driver: WebDriver) -> list[str]:
    """Cards wider than the list, store names cut, a card's cells covered by something (the sticky radar)."""
    found: list[str] = driver.execute_script(
        """
        const out = [], list = document.getElementById('results').getBoundingClientRect();
        document.querySelectorAll('#results li.result').forEach((card, i) => {
          const r = card.getBoundingClientRect();
          if (r.right > list.right + 0.5) out.push(`card ${i} ends at ${r.right}, the list at ${list.right}`);
          card.querySelectorAll('.name, .score, .store-name, .distance, .price, .stock, .delivers').forEach(cell => {
            cell.scrollIntoView({block: 'center'});
            const c = cell.getBoundingClientRect();
            const top = document.elementFromPoint(c.right - 2, c.top + c.height / 2);
            if (!cell.contains(top)) out.push(`card ${i} ${cell.className} under ${top && top.className.baseVal
              !== undefined ? top.className.baseVal : top && (top.id || top.className)}`);
            if (cell.scrollWidth > cell.clientWidth + 1) out.push(`card ${i} ${cell.className} cut: ` +
              `${cell.textContent} in ${cell.clientWidth} px`);
          });
        });
        window.scrollTo(0, 0);
        return out;
        """
    )
    return found


def hidden_when_focused(driver: WebDriver, ids: list[str]) -> list[str]:
    """The controls, focused one after the other as Tab would, that are not wholly in the window once focused."""
    found: list[str] = driver.execute_script(
        """
        return arguments[0].filter(id => {
          const el = document.getElementById(id);
          el.focus();
          const r = el.getBoundingClientRect();
          return document.activeElement !== el || r.top < 0 || r.bottom > window.innerHeight;
        });
        """,
        ids,
    )
    return found


def focus_order_jumps(driver: WebDriver) -> list[str]:
    """Where Tab, going through the facets and the results in the document's order, goes back up the page."""
    found: list[str] = driver.execute_script(
        """
        const out = [], seen = [...document.querySelectorAll('.panes button, .panes [tabindex="0"]')];
        for (let i = 1; i < seen.length; i++) {
          const a = seen[i - 1].getBoundingClientRect(), b = seen[i].getBoundingClientRect();
          if (b.top < a.top - 1) out.push(`${seen[i - 1].textContent} at ${a.top} then ${seen[i].textContent}` +
            ` at ${b.top}`);
        }
        return out;
        """
    )
    return found


def contrasts(driver: WebDriver, selectors: dict[str, tuple[str, str, str, str]]) -> dict[str, float]:
    """name -> contrast of (selector, colour property) over (selector, background property) for the first match
    of each; a background selector "" is the colour behind the first element (its or its ancestors' background)."""
    found: dict[str, float] = driver.execute_script(
        COLOUR
        + """
        const out = {};
        for (const [name, [fg, fgProp, bg, bgProp]] of Object.entries(arguments[0])) {
          const f = document.querySelector(fg), b = bg ? document.querySelector(bg) : null;
          if (!f || (bg && !b)) { out[name] = -1; continue; }
          const under = b ? rgb(getComputedStyle(b)[bgProp]) : paint(bgProp === 'parent' ? f.parentElement : f);
          out[name] = Math.round(ratio(ink(f, fgProp, under), under) * 100) / 100;
        }
        return out;
        """,
        selectors,
    )
    return found
