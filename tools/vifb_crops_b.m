% Makes the small source pairs of crates/mmif-classic/tests/data/vifb/inputs from the TNO and
% RoadScene test images shipped in Zhaozixiang1228/MMIF-CDDFuse (test_img/). Documentation only:
% the tests read the committed PNGs. Run from the repository root with the CDDFuse repository's
% test_img under data/test_img:   octave-cli tools/vifb_crops_b.m
src = 'data/test_img';
dst = 'crates/mmif-classic/tests/data/vifb/inputs';
% name, set, file, first row, first column, height, width, keep colour
cases = {
  'tno_64x48',   'TNO',       '01.png',        200, 300,  48,  64, false;
  'tno_150x111', 'TNO',       '05.png',        100, 200, 111, 150, false;
  'road_160x120','RoadScene', 'FLIR_00211.jpg', 50, 100, 120, 160, true;
};
for k = 1:rows(cases)
  [name, set, file, r0, c0, h, w, colour] = cases{k, :};
  for side = {'ir', 'vi'}
    im = imread(fullfile(src, set, side{1}, file));
    im = im(r0:r0+h-1, c0:c0+w-1, :);
    if size(im, 3) == 3 && (~colour || strcmp(side{1}, 'ir'))
      im = im(:, :, 1);  % TNO and RoadScene infrared images store one gray value in all channels
    end
    imwrite(im, fullfile(dst, sprintf('%s_%s.png', name, side{1})));
  end
end
